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
from dcgan_lab.evaluate import class_coverage, evaluate_variant, predict_classes
from dcgan_lab.fidelity import (
    QuickFID, Uint8Images, extractor_kwargs, fidelity_metrics, generate, reference_cache_name,
)
from dcgan_lab.models import Generator, GeneratorSpec


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    out = tmp_path_factory.mktemp("mnist") / "prepared"
    prepare(DataConfig(dataset="mnist", image_size=32, train_limit=10000), out)
    return load_split(out, "train"), load_split(out, "test")


@pytest.fixture(scope="module")
def classifier_path(mnist, tmp_path_factory):
    train, test = mnist
    model, metrics = train_classifier(ClassifierConfig(width=16, epochs=3, batch_size=64), train, (test[0][:2000], test[1][:2000]),
                                      10, torch.device("cpu"))
    assert metrics["test_accuracy"] > 0.95, metrics  # a small, confident digit classifier
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
    # a confident 10-class classifier: IS of real digits near 10, exactly 1 for one repeated image
    assert isc_real > 7 and isc_single == pytest.approx(1.0, abs=1e-3)


def test_evaluate_variant_is_finite_repeatable_and_states_its_protocol(mnist, classifier_path, tmp_path):
    _, (test_x, test_y) = mnist
    g = Generator(GeneratorSpec(16, 8, 32, 1, "relu", True, "tanh")).eval()
    cfg = EvaluateConfig(n_samples=200, n_real=300, batch_size=100, is_splits=2, seed=7)
    cpu = torch.device("cpu")
    r1 = evaluate_variant(g, (test_x, test_y), "sha-a", cfg, classifier_path, cpu, cache_root=tmp_path)
    r2 = evaluate_variant(g, (test_x, test_y), "sha-a", cfg, classifier_path, cpu, cache_root=tmp_path)
    assert r1 == r2  # same inputs and seed, second time from the cached real features
    for k in ("fid", "is_mean", "is_std", "kid_mean", "kid_std", "precision", "recall"):
        assert math.isfinite(r1[k]), k
    assert r1["fid"] > 0 and r1["is_mean"] >= 1 and 0 <= r1["precision"] <= 1 and 0 <= r1["recall"] <= 1
    assert 1 <= r1["classes_covered"] <= 10 and sum(r1["class_histogram"]) == pytest.approx(1)
    assert {k: r1[k] for k in ("extractor", "fid_features", "n_samples", "n_real", "real_split", "seed",
                               "kid_subset_size")} == {
        "extractor": "dcgan-lab-classifier", "fid_features": "features", "n_samples": 200, "n_real": 300,
        "real_split": "test", "seed": 7, "kid_subset_size": 200}
    r3 = evaluate_variant(g, (test_x, test_y), "sha-a", replace(cfg, seed=8), classifier_path, cpu,
                          cache_root=tmp_path)
    assert r3["fid"] != r1["fid"]


def test_generate_is_seeded_uint8(classifier_path):
    g = Generator(GeneratorSpec(16, 8, 32, 1, "relu", True, "sigmoid")).eval()
    a = generate(g, 10, seed=3, batch_size=4, device=torch.device("cpu"))
    assert a.shape == (10, 1, 32, 32) and a.dtype == torch.uint8
    assert torch.equal(a, generate(g, 10, seed=3, batch_size=10, device=torch.device("cpu")))


def test_reference_cache_name_changes_with_data_subset_and_extractor_weights(classifier_path, tmp_path):
    kwargs = extractor_kwargs(EvaluateConfig(), classifier_path)
    base = reference_cache_name(kwargs, "sha-a", 300)
    assert base == reference_cache_name(kwargs, "sha-a", 300)
    assert base != reference_cache_name(kwargs, "sha-b", 300)
    assert base != reference_cache_name(kwargs, "sha-a", 299)
    other = tmp_path / "other.pt"
    other.write_bytes(classifier_path.read_bytes() + b"\0")  # different weights file
    assert base != reference_cache_name({**kwargs, "feature_extractor_weights_path": str(other)}, "sha-a", 300)


def test_cached_real_features_are_not_reused_for_other_data(mnist, classifier_path, tmp_path):
    """The cache is keyed by the split's hash: a different real set under another hash gives another FID."""
    _, (test_x, test_y) = mnist
    g = Generator(GeneratorSpec(16, 8, 32, 1, "relu", True, "tanh")).eval()
    cfg = EvaluateConfig(n_samples=200, n_real=300, batch_size=100, is_splits=2)
    cpu = torch.device("cpu")
    first = evaluate_variant(g, (test_x, test_y), "sha-a", cfg, classifier_path, cpu, cache_root=tmp_path)
    shifted = (test_x[300:], test_y[300:])
    second = evaluate_variant(g, shifted, "sha-b", cfg, classifier_path, cpu, cache_root=tmp_path)
    assert second["fid"] != first["fid"]
    names = {p.name.split("-dcgan-lab-classifier-")[0] for p in tmp_path.iterdir()}
    assert len(names) == 2  # one cache entry per real set (features, logits and FID statistics each)


def test_class_coverage_sees_mode_collapse(mnist, classifier_path):
    from dcgan_lab.classifier import load_classifier

    _, (test_x, test_y) = mnist
    model = load_classifier(classifier_path)
    cpu = torch.device("cpu")
    varied = class_coverage(predict_classes(test_x[:1000], model, cpu), test_y, 10)
    collapsed = class_coverage(predict_classes(test_x[:1].expand(1000, -1, -1, -1), model, cpu), test_y, 10)
    assert varied["classes_covered"] == 10 and varied["class_kl_real"] < 0.1
    assert collapsed["classes_covered"] == 1
    assert collapsed["class_kl_uniform"] == pytest.approx(math.log(10), rel=1e-6)


def test_fidelity_metrics_equal_calculate_metrics_and_share_the_classifier_pass(mnist, classifier_path, tmp_path):
    """Our step-by-step use of torch-fidelity gives exactly what one calculate_metrics call gives, with a
    cold and a warm real-feature cache; the logits it hands back are the classifier's on the samples."""
    from dcgan_lab.classifier import load_classifier

    (train_x, _), (test_x, _) = mnist
    fake, real = train_x[:300], test_x[:250]  # sizes that do not divide the batch: ragged last batches
    cfg = EvaluateConfig(batch_size=128, is_splits=3, kid_subset_size=100, seed=5)
    kwargs = extractor_kwargs(cfg, classifier_path)
    direct = torch_fidelity.calculate_metrics(
        input1=Uint8Images(fake), input2=Uint8Images(real), fid=True, isc=True, kid=True, prc=True,
        isc_splits=3, kid_subset_size=100, batch_size=128, rng_seed=5, cuda=False, cache=False,
        save_cpu_ram=True, verbose=False, **kwargs)
    expected = {"fid": "frechet_inception_distance", "is_mean": "inception_score_mean",
                "is_std": "inception_score_std", "kid_mean": "kernel_inception_distance_mean",
                "kid_std": "kernel_inception_distance_std", "precision": "precision", "recall": "recall"}
    for cache_name in (None, "real-a", "real-a"):  # no cache, then cold, then warm
        ours, features = fidelity_metrics(fake, real, kwargs, cfg, torch.device("cpu"), cache_name, tmp_path)
        assert {k: ours[k] for k in expected} == {k: float(direct[v]) for k, v in expected.items()}, cache_name
    assert any(p.name.startswith("real-a") for p in tmp_path.iterdir())
    model = load_classifier(classifier_path)
    assert torch.equal(features["logits"].argmax(1), predict_classes(fake, model, torch.device("cpu")))
    assert features["features"].shape == (300, 64)


def test_extractor_is_a_registered_torch_fidelity_extractor(classifier_path):
    name = register()
    assert register() == name  # idempotent within a process
    fx = ClassifierFeatureExtractor(name, ["features", "logits"], feature_extractor_weights_path=str(classifier_path))
    feats, logits = fx(torch.zeros(3, 1, 32, 32, dtype=torch.uint8))
    assert feats.shape == (3, 64) and logits.shape == (3, 10)


def test_inception_without_weights_fails_with_a_clear_message(tmp_path):
    cfg = EvaluateConfig(feature_extractor="inception", inception_weights=str(tmp_path / "nope.pth"))
    with pytest.raises(EvaluationError, match=r"Inception weights not found at .*nope\.pth.*evaluate\.inception_weights"):
        extractor_kwargs(cfg, tmp_path / "classifier.pt")


def test_inception_path_runs_the_real_loading_code_on_a_weights_file(tmp_path):
    """No Inception weights offline: save a randomly initialised state dict of the right architecture
    and let torch-fidelity's own loader read it, then compute every metric through Inception."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class ArchitectureOnly(FeatureExtractorInceptionV3):
        def load_state_dict(self, *args, **kwargs):  # keep the random init: we want its state dict only
            return None

    empty = tmp_path / "empty.pth"
    torch.save({}, empty)
    weights = tmp_path / "inception.pth"
    torch.save(ArchitectureOnly("arch", ["2048"], feature_extractor_weights_path=str(empty)).state_dict(), weights)

    cfg = EvaluateConfig(feature_extractor="inception", inception_weights=str(weights), n_samples=16, n_real=16,
                         batch_size=8, is_splits=2, kid_subset_size=8)
    kwargs = extractor_kwargs(cfg, tmp_path / "unused.pt")
    assert kwargs["feature_extractor"] == "inception-v3-compat" and kwargs["feature_layer_fid"] == "2048"
    gen = torch.Generator().manual_seed(0)
    fake = torch.randint(0, 256, (16, 1, 32, 32), dtype=torch.uint8, generator=gen)  # grayscale -> 3 channels
    real = torch.randint(0, 256, (16, 1, 32, 32), dtype=torch.uint8, generator=gen)
    r, _ = fidelity_metrics(fake, real, kwargs, cfg, torch.device("cpu"))
    assert all(math.isfinite(r[k]) for k in ("fid", "is_mean", "kid_mean", "precision", "recall")), r


def test_quick_fid_prefers_a_generator_closer_to_the_data(mnist, classifier_path, tmp_path):
    """The quick FID that picks the best checkpoint ranks real digits above an untrained generator."""
    (train_x, _), (test_x, _) = mnist
    quick = QuickFID(test_x, "sha-q", EvaluateConfig(batch_size=100), classifier_path, 200, torch.device("cpu"))
    untrained = Generator(GeneratorSpec(16, 8, 32, 1, "relu", True, "tanh")).eval()

    class Replay(torch.nn.Module):  # a "generator" that returns training digits
        spec = GeneratorSpec(16, 8, 32, 1, "relu", True, "sigmoid")

        def forward(self, z):
            return train_x[: len(z)].float() / 255

    fid_untrained, fid_replay = quick(untrained), quick(Replay())
    assert fid_replay < fid_untrained / 5
    assert quick(untrained) == fid_untrained  # seeded samples, cached real features
