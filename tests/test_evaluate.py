"""Evaluation with the real torch-fidelity on small sample counts."""

import math
from dataclasses import replace

import pytest
import torch
import torch_fidelity

from dcgan_lab.classifier import ClassifierFeatureExtractor, register, save_classifier, train_classifier
from dcgan_lab.config import ClassifierConfig, DataConfig, EvaluateConfig
from dcgan_lab.data import load_split, prepare
from dcgan_lab.errors import EvaluationError
from dcgan_lab.evaluate import Uint8Images, extractor_kwargs, score_generator
from dcgan_lab.models import Generator, GeneratorSpec


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    out = tmp_path_factory.mktemp("mnist") / "prepared"
    prepare(DataConfig(dataset="mnist", image_size=32, train_limit=3000), out)
    return load_split(out, "train"), load_split(out, "test")


@pytest.fixture(scope="module")
def classifier_path(mnist, tmp_path_factory):
    train, test = mnist
    model, metrics = train_classifier(ClassifierConfig(width=8, epochs=4, batch_size=64), train, (test[0][:2000], test[1][:2000]),
                                      10, torch.device("cpu"))
    assert metrics["test_accuracy"] > 0.8, metrics  # even a tiny classifier learns digits
    path = tmp_path_factory.mktemp("clf") / "classifier.pt"
    save_classifier(model, path, **metrics)
    return path


def fidelity(a, b, classifier_path, **kw):
    return torch_fidelity.calculate_metrics(
        input1=Uint8Images(a), input2=Uint8Images(b), cuda=False, verbose=False, cache=False, save_cpu_ram=True,
        batch_size=250, **extractor_kwargs(EvaluateConfig(), classifier_path), **kw,
    )


def test_fid_orders_real_noise_and_collapse(mnist, classifier_path):
    (train_x, _), (test_x, _) = mnist
    a, b = test_x[:500], test_x[500:1000]
    noise = torch.randint(0, 256, a.shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    single = a[:1].expand_as(a).contiguous()
    fid_real = fidelity(a, b, classifier_path, fid=True)["frechet_inception_distance"]
    fid_noise = fidelity(a, noise, classifier_path, fid=True)["frechet_inception_distance"]
    fid_single = fidelity(a, single, classifier_path, fid=True)["frechet_inception_distance"]
    assert 0 <= fid_real < fid_noise / 10 and fid_real < fid_single / 10
    isc_real = fidelity(a, b, classifier_path, isc=True, isc_splits=2)["inception_score_mean"]
    isc_single = fidelity(single, b, classifier_path, isc=True, isc_splits=2)["inception_score_mean"]
    # a small, unsure classifier: IS well above 1 for varied digits, exactly 1 for one repeated image
    assert isc_real > 2 and isc_single == pytest.approx(1.0, abs=1e-3)


def test_score_generator_is_finite_repeatable_and_states_its_protocol(mnist, classifier_path):
    (_, _), (test_x, _) = mnist
    g = Generator(GeneratorSpec(16, 8, 32, 1, "relu", True, "tanh")).eval()
    cfg = EvaluateConfig(n_samples=200, n_real=300, batch_size=100, is_splits=2, seed=7)
    r1 = score_generator(g, test_x, cfg, classifier_path, torch.device("cpu"))
    r2 = score_generator(g, test_x, cfg, classifier_path, torch.device("cpu"))
    assert math.isfinite(r1["fid"]) and r1["fid"] > 0 and r1["is_mean"] >= 1
    assert r1 == r2
    assert {k: r1[k] for k in ("extractor", "fid_features", "n_samples", "n_real", "real_split", "seed")} == {
        "extractor": "dcgan-lab-classifier", "fid_features": "features", "n_samples": 200, "n_real": 300,
        "real_split": "test", "seed": 7}
    r3 = score_generator(g, test_x, replace(cfg, seed=8), classifier_path, torch.device("cpu"))
    assert r3["fid"] != r1["fid"]


def test_extractor_is_a_registered_torch_fidelity_extractor(classifier_path):
    name = register()
    assert register() == name  # idempotent within a process
    fx = ClassifierFeatureExtractor(name, ["features", "logits"], feature_extractor_weights_path=str(classifier_path))
    feats, logits = fx(torch.zeros(3, 1, 32, 32, dtype=torch.uint8))
    assert feats.shape == (3, 32) and logits.shape == (3, 10)


def test_inception_without_weights_fails_with_a_clear_message(tmp_path):
    cfg = EvaluateConfig(feature_extractor="inception", inception_weights=str(tmp_path / "nope.pth"))
    with pytest.raises(EvaluationError, match=r"Inception weights not found at .*nope\.pth.*evaluate\.inception_weights"):
        extractor_kwargs(cfg, tmp_path / "classifier.pt")
