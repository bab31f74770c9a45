"""Per-class scores with the real torch-fidelity: intra-class FID on features with known answers (a set against
itself, a class too small to score, grouping by requested label vs by prediction) and the conditional accuracy."""

import pytest
import torch

from dcgan_lab.core.config import EvaluateConfig
from dcgan_lab.evaluation.fidelity import extractor_kwargs, fidelity_metrics
from dcgan_lab.evaluation.per_class import (
    PREDICTED, REQUESTED, class_fid, conditional_accuracy, intra_fid, per_class_scores,
)


def features(n: int, dim: int, mean: float, seed: int) -> torch.Tensor:
    """(n, dim) float32 features around `mean`, as an extractor would give them."""
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)) + mean


def test_a_set_against_itself_scores_about_zero_in_every_class():
    x = torch.cat([features(40, 4, 0.0, 0), features(40, 4, 5.0, 1), features(40, 4, -5.0, 2)])
    labels = torch.arange(3).repeat_interleave(40)
    fids = intra_fid(x, labels, x, labels, 3)
    assert len(fids) == 3 and all(f == pytest.approx(0.0, abs=1e-4) for f in fids), fids
    assert intra_fid(x, labels, x + 1.0, labels, 3) == pytest.approx([4.0] * 3, abs=1e-3)  # shifted mean: |1|^2 x 4


def test_a_class_with_fewer_than_two_samples_on_a_side_is_null_and_left_out_of_the_mean():
    real = torch.cat([features(30, 4, 0.0, 0), features(30, 4, 3.0, 1), features(30, 4, 6.0, 2)])
    real_labels = torch.arange(3).repeat_interleave(30)
    fake = torch.cat([features(30, 4, 0.5, 3), features(1, 4, 3.0, 4), features(30, 4, 6.5, 5)])
    requested = torch.tensor([0] * 30 + [1] + [2] * 30)  # class 1: one sample
    r = per_class_scores(fake, real, requested, requested, real_labels, 3)
    assert r["intra_fid"][1] is None and all(r["intra_fid"][k] > 0 for k in (0, 2))
    assert r["intra_fid_classes"] == 2
    assert r["intra_fid_mean"] == pytest.approx((r["intra_fid"][0] + r["intra_fid"][2]) / 2)
    assert class_fid(fake[:1], real) is None and class_fid(fake, real[:1]) is None
    empty = per_class_scores(fake[:1], real, requested[:1], requested[:1], real_labels, 3)
    assert (empty["intra_fid"], empty["intra_fid_mean"], empty["intra_fid_classes"]) == ([None] * 3, None, 0)


def test_a_conditional_generator_is_grouped_by_requested_label_an_unconditional_one_by_prediction():
    """Samples 0-49 look like real class 0 and were asked for class 0; the classifier (wrongly) calls them 1,
    and the other way round for samples 50-99. By label they match their class; by prediction they do not."""
    real = torch.cat([features(50, 4, 0.0, 0), features(50, 4, 10.0, 1)])
    labels = torch.arange(2).repeat_interleave(50)
    fake = torch.cat([features(50, 4, 0.0, 2), features(50, 4, 10.0, 3)])
    predicted = 1 - labels
    conditional = per_class_scores(fake, real, predicted, labels, labels, 2)
    unconditional = per_class_scores(fake, real, predicted, None, labels, 2)
    assert conditional["intra_fid_grouping"] == REQUESTED and unconditional["intra_fid_grouping"] == PREDICTED
    assert conditional["intra_fid_mean"] < 2 and unconditional["intra_fid_mean"] > 300  # |10|^2 x 4 dims = 400
    assert conditional["conditional_accuracy"] == 0.0 and "conditional_accuracy" not in unconditional


def test_conditional_accuracy_is_the_share_classified_as_requested():
    assert conditional_accuracy(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2])) == 0.75


def test_one_class_holding_everything_gives_torch_fidelitys_fid_exactly(mnist, classifier_path, tmp_path):
    """The per-class FID is torch-fidelity's own computation: on all samples at once it is the overall FID."""
    (train_x, _), (test_x, test_y) = mnist
    cfg = EvaluateConfig(batch_size=100, is_splits=2, kid_subset_size=100, precision_recall=False)
    kwargs = extractor_kwargs(cfg, classifier_path)
    result, fake, real = fidelity_metrics(train_x[:200], test_x[:300], kwargs, cfg, torch.device("cpu"))
    everything = intra_fid(fake["features"], torch.zeros(200, dtype=torch.long), real["features"],
                           torch.zeros(300, dtype=torch.long), 1)
    assert everything == [result["fid"]]
    by_digit = intra_fid(fake["features"], fake["logits"].argmax(1), real["features"], test_y[:300], 10)
    assert all(f is not None and f >= 0 for f in by_digit)  # real digits, grouped by the classifier
