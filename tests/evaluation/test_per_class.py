"""Per-class scores with the real torch-fidelity: intra-class FID on features with known answers (a set against
itself, a class too small to score, grouping by requested label vs by prediction), the conditional accuracy,
per-class precision/recall (torch-fidelity's own on each class's subset) and the diversity ratio."""

import pytest
import torch

from dcgan_lab.core.config import EvaluateConfig
from torch_fidelity import metric_prc

from dcgan_lab.evaluation.fidelity import PRC_KWARGS, extractor_kwargs, fidelity_metrics
from dcgan_lab.evaluation.per_class import (
    DIVERSITY_MAX_SAMPLES, PREDICTED, REQUESTED, class_fid, class_groups, class_precision_recall, conditional_accuracy,
    diversity_ratio, intra_diversity, intra_fid, intra_precision_recall, mean_pairwise_distance, per_class_scores,
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


def test_per_class_precision_recall_is_torch_fidelitys_own_on_each_class_subset():
    real = torch.cat([features(40, 4, 0.0, 0), features(40, 4, 4.0, 1), features(40, 4, 8.0, 2)])
    real_labels = torch.arange(3).repeat_interleave(40)
    fake = torch.cat([features(30, 4, 0.5, 3), features(4, 4, 4.0, 4), features(3, 4, 8.0, 5)])
    groups = torch.tensor([0] * 30 + [1] * 4 + [2] * 3)  # class 2: 3 samples, no more than k = 3
    r = intra_precision_recall(fake, groups, real, real_labels, 3, PRC_KWARGS)
    for k in (0, 1):  # 4 samples are enough for a k-NN radius of k = 3 others
        own = metric_prc.prc_features_to_metric(fake[groups == k], real[real_labels == k], **PRC_KWARGS)
        assert (r["intra_precision"][k], r["intra_recall"][k]) == (own["precision"], own["recall"])
    assert r["intra_precision"][2] is None and r["intra_recall"][2] is None
    assert r["intra_recall_mean"] == pytest.approx((r["intra_recall"][0] + r["intra_recall"][1]) / 2)
    assert class_precision_recall(fake[:30], real[:3], PRC_KWARGS) == (None, None)  # too few real ones too
    assert PRC_KWARGS["prc_neighborhood"] == 3


def test_one_class_holding_everything_gives_the_overall_precision_and_recall_exactly(mnist, classifier_path):
    (train_x, _), (test_x, _) = mnist
    cfg = EvaluateConfig(batch_size=100, is_splits=2, kid_subset_size=100)
    kwargs = extractor_kwargs(cfg, classifier_path)
    result, fake, real = fidelity_metrics(train_x[:200], test_x[:300], kwargs, cfg, torch.device("cpu"))
    layer = kwargs["feature_layer_prc"]
    everything = intra_precision_recall(fake[layer], torch.zeros(200, dtype=torch.long), real[layer],
                                        torch.zeros(300, dtype=torch.long), 1, PRC_KWARGS)
    assert (everything["intra_precision"], everything["intra_recall"]) == ([result["precision"]], [result["recall"]])


def test_the_mean_pairwise_distance_is_over_distinct_pairs_and_a_seeded_subset_of_a_large_class():
    points = torch.tensor([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])  # distances 5, 10, 5
    assert mean_pairwise_distance(points, 0) == pytest.approx(20 / 3)
    large = features(DIVERSITY_MAX_SAMPLES + 500, 8, 0.0, 1)
    subset = mean_pairwise_distance(large, 0)
    assert subset == mean_pairwise_distance(large, 0) != mean_pairwise_distance(large, 1)  # seeded, and a subset
    assert subset == pytest.approx(float(torch.pdist(large.double()).mean()), rel=0.01)  # of the same spread


def test_the_diversity_ratio_is_one_for_the_data_itself_and_zero_for_one_image_repeated():
    real = features(60, 8, 0.0, 0)
    assert diversity_ratio(real, real, 0) == pytest.approx(1.0)
    assert diversity_ratio(real * 0.5, real, 0) == pytest.approx(0.5)  # half the spread, wherever it sits
    assert diversity_ratio(real[:1].expand(60, -1) + 3.0, real, 0) == 0.0
    assert diversity_ratio(real[:1], real, 0) is None and diversity_ratio(real, real[:1], 0) is None
    assert diversity_ratio(real, real[:1].expand(5, -1), 0) is None  # real images all one point: no scale
    other = features(60, 8, 0.0, 1)  # another draw of the same distribution: about 1
    assert 0.9 < diversity_ratio(other, real, 0) < 1.1


def test_intra_diversity_groups_as_the_other_per_class_scores_and_nulls_what_it_cannot_score():
    real = torch.cat([features(30, 4, 0.0, 0), features(30, 4, 5.0, 1), features(30, 4, 9.0, 2)])
    labels = torch.arange(3).repeat_interleave(30)
    fake = torch.cat([features(20, 4, 0.0, 3), real[30:31].expand(20, -1), features(1, 4, 9.0, 4)])
    requested = torch.tensor([0] * 20 + [1] * 20 + [2])
    groups, grouping = class_groups(1 - requested.clamp(max=1), requested)  # grouped by what was asked for
    assert grouping == REQUESTED and torch.equal(groups, requested)
    r = intra_diversity(fake, groups, real, labels, 3, seed=0)
    assert 0.7 < r["intra_diversity"][0] < 1.3 and r["intra_diversity"][1:] == [0.0, None]
    assert r["intra_diversity_mean"] == pytest.approx(r["intra_diversity"][0] / 2)
