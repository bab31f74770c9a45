"""Per-class scores of a generator on labelled data: the intra-class FID (each class's samples against that
class's real images, as StudioGAN reports it), precision and recall within each class, the within-class
diversity ratio and, for a conditional G, how often the domain classifier sees the class that was asked for
(what it is asked for: fidelity.requested_labels). Every per-class score groups the samples alike (class_groups).

Every per-class FID is torch-fidelity's own: `fid_features_to_statistics` on one class's features, then
`fid_statistics_to_metric`, in the same feature space as the overall FID; every per-class precision/recall is
its `prc_features_to_metric` with the overall one's settings (fidelity.PRC_KWARGS). Nothing here computes a
Fréchet distance or a k-NN radius by hand. The diversity ratio is not torch-fidelity's: a mean of pairwise
distances (torch.pdist) over the mean for the real images of the class.
"""

from __future__ import annotations

import torch
from torch_fidelity import metric_fid, metric_prc


REQUESTED = "requested label"  # a conditional G's sample belongs to the class it was generated for
PREDICTED = "classifier prediction"  # an unconditional G's sample belongs to the class the domain classifier sees
MIN_PER_CLASS = 2  # a covariance (and a distance) needs two samples; fewer on either side: no FID, no diversity
# The diversity ratio's mean pairwise distance is over at most this many samples of a class and side (a seeded
# random subset of a larger class): <= 2.0M pairs, and a class holds about 1,000 on MNIST's default.
DIVERSITY_MAX_SAMPLES = 2000


def class_groups(predicted: torch.Tensor, requested: torch.Tensor | None) -> tuple[torch.Tensor, str]:
    """The class each sample counts for, (N,) on the CPU, and how it got it: the label a conditional G was
    asked for (`requested`), else the domain classifier's `predicted` class."""
    return (predicted.cpu(), PREDICTED) if requested is None else (requested.cpu(), REQUESTED)


def mean_of(values: list[float | None]) -> float | None:
    """The mean of the classes that have a value; None if none has."""
    scored = [v for v in values if v is not None]
    return sum(scored) / len(scored) if scored else None


def class_fid(fake: torch.Tensor, real: torch.Tensor) -> float | None:
    """torch-fidelity's FID between two (N, D) feature sets of one class; None below MIN_PER_CLASS on a side."""
    if len(fake) < MIN_PER_CLASS or len(real) < MIN_PER_CLASS:
        return None
    # As given (float32, like the features of the overall FID), so all classes at once give that FID exactly.
    stats = [metric_fid.fid_features_to_statistics(x) for x in (fake, real)]
    return float(metric_fid.fid_statistics_to_metric(*stats, False)[metric_fid.KEY_METRIC_FID])


def intra_fid(fake: torch.Tensor, fake_classes: torch.Tensor, real: torch.Tensor, real_labels: torch.Tensor,
              n_classes: int) -> list[float | None]:
    """FID of class k for k in 0..n_classes-1: the samples with fake_classes == k against the real features
    with real_labels == k (features (N, D) and (M, D) on the CPU, classes (N,) and labels (M,))."""
    return [class_fid(fake[fake_classes == k], real[real_labels == k]) for k in range(n_classes)]


def conditional_accuracy(predicted: torch.Tensor, requested: torch.Tensor) -> float:
    """The fraction of a conditional G's samples that the domain classifier puts in the class they were asked
    for. The reverse direction of Ravuri & Vinyals' Classification Accuracy Score (2019: a classifier trained
    on samples, tested on real data); this one is trained on real data and tested on samples, the "GAN-test"
    of Shmelkov et al. (2018)."""
    return float((predicted == requested).double().mean())


def per_class_scores(fake: torch.Tensor, real: torch.Tensor, predicted: torch.Tensor,
                     requested: torch.Tensor | None, real_labels: torch.Tensor, n_classes: int) -> dict:
    """eval.json's per-class entries for one generator. Samples are grouped by the label they were generated
    for (a conditional G: `requested`), else by the domain classifier's `predicted` class.

    intra_fid: a list with one entry per class, index = class, null where a class has fewer than 2 samples on
    either side; intra_fid_mean: the mean over the classes that have a value (null if none has);
    intra_fid_classes: how many have one; intra_fid_grouping: how samples were grouped;
    conditional_accuracy (conditional G only)."""
    groups, grouping = class_groups(predicted, requested)
    fids = intra_fid(fake, groups, real, real_labels, n_classes)
    out = {"intra_fid": fids, "intra_fid_mean": mean_of(fids),
           "intra_fid_classes": sum(f is not None for f in fids), "intra_fid_grouping": grouping}
    if requested is not None:
        out["conditional_accuracy"] = conditional_accuracy(predicted.cpu(), requested.cpu())
    return out


def class_precision_recall(fake: torch.Tensor, real: torch.Tensor, prc_kwargs: dict) -> tuple[float | None, ...]:
    """torch-fidelity's (precision, recall) of two (N, D) feature sets of one class, with `prc_kwargs` (the
    overall one's: fidelity.PRC_KWARGS); (None, None) when a side has no more samples than the k of its k-NN
    radius (prc_neighborhood), which needs k others."""
    k = prc_kwargs["prc_neighborhood"]
    if len(fake) <= k or len(real) <= k:
        return None, None
    out = metric_prc.prc_features_to_metric(fake, real, **prc_kwargs)
    return float(out[metric_prc.KEY_METRIC_PRECISION]), float(out[metric_prc.KEY_METRIC_RECALL])


def intra_precision_recall(fake: torch.Tensor, groups: torch.Tensor, real: torch.Tensor, real_labels: torch.Tensor,
                           n_classes: int, prc_kwargs: dict) -> dict:
    """eval.json's intra_precision and intra_recall (one entry per class, index = class, null where a class is
    too small on a side) and their means over the classes with a value: the samples with groups == k (what
    class_groups gives) against the real features with real_labels == k."""
    pairs = [class_precision_recall(fake[groups == k], real[real_labels == k], prc_kwargs) for k in range(n_classes)]
    precision, recall = [p for p, _ in pairs], [r for _, r in pairs]
    return {"intra_precision": precision, "intra_precision_mean": mean_of(precision),
            "intra_recall": recall, "intra_recall_mean": mean_of(recall)}


def mean_pairwise_distance(x: torch.Tensor, seed: int) -> float:
    """The mean Euclidean distance between two different rows of x (N, D), N >= 2; of a random subset of
    DIVERSITY_MAX_SAMPLES rows (seeded by `seed`) when N is larger. In float64: a mean of millions of terms."""
    if len(x) > DIVERSITY_MAX_SAMPLES:
        x = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:DIVERSITY_MAX_SAMPLES]]
    return float(torch.pdist(x.double()).mean())


def diversity_ratio(fake: torch.Tensor, real: torch.Tensor, seed: int) -> float | None:
    """How varied one class's samples are, relative to its real images: the mean pairwise feature distance of
    the samples over that of the real ones. 1: as varied as the data; 0: one image repeated. None below
    MIN_PER_CLASS on a side, or when the real images of the class are all one point."""
    if len(fake) < MIN_PER_CLASS or len(real) < MIN_PER_CLASS:
        return None
    spread = mean_pairwise_distance(real, seed)
    return mean_pairwise_distance(fake, seed) / spread if spread > 0 else None


def intra_diversity(fake: torch.Tensor, groups: torch.Tensor, real: torch.Tensor, real_labels: torch.Tensor,
                    n_classes: int, seed: int) -> dict:
    """eval.json's intra_diversity (the diversity ratio of each class, index = class, null where undefined) and
    intra_diversity_mean (over the classes with a value), grouped as intra_precision_recall groups."""
    ratios = [diversity_ratio(fake[groups == k], real[real_labels == k], seed) for k in range(n_classes)]
    return {"intra_diversity": ratios, "intra_diversity_mean": mean_of(ratios)}
