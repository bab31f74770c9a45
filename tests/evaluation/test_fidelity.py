"""torch-fidelity plumbing with the real torch-fidelity on small sample counts: our step-by-step metrics equal
one calculate_metrics call, the real-feature cache is keyed by what it holds and gives back every real image's
features, the quick FID ranks, and a conditional generator is asked for the real split's class shares."""

import hashlib
import math

import pytest
import torch
import torch_fidelity

from dcgan_lab.core.config import EvaluateConfig
from dcgan_lab.core.errors import EvaluationError
from dcgan_lab.evaluation.classifier import load_classifier
from dcgan_lab.evaluation.evaluate import predict_classes
from dcgan_lab.evaluation.fidelity import (
    QuickFID, Uint8Images, cache_real_features, cached_files, extractor_kwargs, fidelity_metrics, reference_cache_name,
    requested_labels,
)
from dcgan_lab.gan.models import Generator, GeneratorSpec
from dcgan_lab.gan.sampling import generate, labels_in_proportion


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


def test_reference_cache_name_changes_with_data_subset_and_extractor_weights(classifier_path, tmp_path):
    kwargs = extractor_kwargs(EvaluateConfig(), classifier_path)
    base = reference_cache_name(kwargs, "sha-a", 300)
    assert base == reference_cache_name(kwargs, "sha-a", 300)
    # What it is built from, as the README says: the split's sha256, the number of real images, the extractor
    # and the sha256 of its weights file.
    weights = hashlib.sha256(classifier_path.read_bytes()).hexdigest()
    key = hashlib.sha256(f"sha-a|300|dcgan-lab-classifier|{weights}".encode()).hexdigest()
    assert base == f"dcgan-lab-real-{key[:24]}"
    assert base != reference_cache_name(kwargs, "sha-b", 300)
    assert base != reference_cache_name(kwargs, "sha-a", 299)
    other = tmp_path / "other.pt"
    other.write_bytes(classifier_path.read_bytes() + b"\0")  # different weights file
    assert base != reference_cache_name({**kwargs, "feature_extractor_weights_path": str(other)}, "sha-a", 300)


def test_fidelity_metrics_equal_calculate_metrics_and_share_the_classifier_pass(mnist, classifier_path, tmp_path):
    """Our step-by-step use of torch-fidelity gives exactly what one calculate_metrics call gives, with a
    cold and a warm real-feature cache; the logits it hands back are the classifier's on the samples."""
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
    real_features = []
    for cache_name in (None, "real-a", "real-a"):  # no cache, then cold, then warm
        ours, features, real_f = fidelity_metrics(fake, real, kwargs, cfg, torch.device("cpu"), cache_name, tmp_path)
        assert {k: ours[k] for k in expected} == {k: float(direct[v]) for k, v in expected.items()}, cache_name
        real_features.append(real_f)
    assert any(p.name.startswith("real-a") for p in tmp_path.iterdir())
    model = load_classifier(classifier_path)
    assert torch.equal(features["logits"].argmax(1), predict_classes(fake, model, torch.device("cpu")))
    assert features["features"].shape == (300, 64)
    # Every real image's features, row i from image i, also when they come from the cache (the per-class FID
    # groups them by label): the same with no cache, a cold one and a warm one.
    for real_f in real_features[1:]:
        assert real_f.keys() == real_features[0].keys() == {"features", "logits"}
        assert all(torch.equal(real_f[k], real_features[0][k]) for k in real_f)
    assert torch.equal(real_features[2]["logits"].argmax(1), predict_classes(real, model, torch.device("cpu")))


def test_the_reference_stage_cache_is_every_file_scoring_would_write_so_scoring_only_reads_it(mnist, classifier_path,
                                                                                               tmp_path):
    """cache_real_features writes what fidelity_metrics' first call would (the real split's features per layer and
    its FID statistics), so an evaluate@ stage that scores against it writes nothing and gets the same numbers."""
    (train_x, _), (test_x, _) = mnist
    fake, real = train_x[:300], test_x[:250]
    cfg = EvaluateConfig(batch_size=128, is_splits=3, kid_subset_size=100, seed=5)
    kwargs = extractor_kwargs(cfg, classifier_path)
    cold, warm = tmp_path / "cold", tmp_path / "warm"
    expected, _, _ = fidelity_metrics(fake, real, kwargs, cfg, torch.device("cpu"), "real-b", cold)
    files = cache_real_features(real, kwargs, cfg, torch.device("cpu"), "real-b", warm)
    assert [p.name for p in files] == sorted(p.name for p in cold.iterdir())
    assert files == cached_files("real-b", warm)
    stamps = {p: p.stat().st_mtime_ns for p in files}
    ours, _, _ = fidelity_metrics(fake, real, kwargs, cfg, torch.device("cpu"), "real-b", warm)
    assert ours == expected
    assert {p: p.stat().st_mtime_ns for p in warm.iterdir()} == stamps  # read, not rewritten


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
    r, _, _ = fidelity_metrics(fake, real, kwargs, cfg, torch.device("cpu"))
    assert all(math.isfinite(r[k]) for k in ("fid", "is_mean", "kid_mean", "precision", "recall")), r


def test_uint8_images_are_items_and_grey_becomes_rgb_for_inception():
    x = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    assert len(Uint8Images(x)) == 5 and Uint8Images(x)[2] is not None and torch.equal(Uint8Images(x)[2], x[2])
    rgb = Uint8Images(x, rgb=True)[2]
    assert rgb.shape == (3, 8, 8) and all(torch.equal(rgb[c], x[2, 0]) for c in range(3))


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
    # ... and what torch-fidelity computes from scratch (no cache) on the same 200 samples and real images.
    samples = generate(untrained, 200, 0, 100, torch.device("cpu"))  # evaluate.seed 0, batch_size 100
    direct = fidelity(samples, test_x[:200], classifier_path, fid=True)["frechet_inception_distance"]
    assert fid_untrained == pytest.approx(direct, rel=1e-9, abs=1e-9)


def test_quick_fid_asks_a_conditional_generator_for_the_real_class_shares(mnist, classifier_path, tmp_path):
    (_, _), (test_x, test_y) = mnist
    g = Generator(GeneratorSpec(16, 8, 32, 1, "relu", True, "tanh", n_classes=10)).eval()
    cfg, cpu = EvaluateConfig(batch_size=100), torch.device("cpu")
    quick = QuickFID(test_x, "sha-c", cfg, classifier_path, 200, cpu, real_labels=test_y)
    labels = labels_in_proportion(200, torch.bincount(test_y[:200], minlength=10))
    direct = fidelity(generate(g, 200, 0, 100, cpu, labels=labels), test_x[:200], classifier_path, fid=True)
    assert quick(g) == pytest.approx(direct["frechet_inception_distance"], rel=1e-9, abs=1e-9)
    without_labels = QuickFID(test_x, "sha-c", cfg, classifier_path, 200, cpu)
    with pytest.raises(EvaluationError, match=r"conditional generator \(10 classes\).*QuickFID: real_labels"):
        without_labels(g)


def test_a_conditional_generator_is_asked_for_the_real_class_shares():
    spec = GeneratorSpec(8, 4, 16, 1, "relu", True, "tanh")
    assert requested_labels(Generator(spec), 10, torch.tensor([0, 1])) is None  # unconditional
    g = Generator(GeneratorSpec(8, 4, 16, 1, "relu", True, "tanh", n_classes=3))
    real = torch.tensor([0] * 6 + [1] * 3 + [2] * 1)
    assert requested_labels(g, 20, real).tolist() == [0] * 12 + [1] * 6 + [2] * 2
    assert requested_labels(g, 4, torch.tensor([2, 2])).tolist() == [2] * 4  # a class the split lacks: none
    with pytest.raises(EvaluationError, match=r"^a conditional generator \(3 classes\) is scored against labelled"):
        requested_labels(g, 4, None)
    with pytest.raises(EvaluationError, match=r"labels up to 3, but the conditional generator knows 3 classes"):
        requested_labels(g, 4, torch.tensor([0, 3]))
