"""Per-class scores of a generator on labelled data: the intra-class FID (each class's samples against that
class's real images, as StudioGAN reports it) and, for a conditional G, how often the domain classifier sees
the class that was asked for (what it is asked for: fidelity.requested_labels).

Every per-class FID is torch-fidelity's own: `fid_features_to_statistics` on one class's features, then
`fid_statistics_to_metric`, in the same feature space as the overall FID. Nothing here computes a Fréchet
distance by hand.
"""

from __future__ import annotations

import torch
from torch_fidelity import metric_fid


REQUESTED = "requested label"  # a conditional G's sample belongs to the class it was generated for
PREDICTED = "classifier prediction"  # an unconditional G's sample belongs to the class the domain classifier sees
MIN_PER_CLASS = 2  # a covariance needs two samples; fewer on either side and the class gets no FID


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
    groups, grouping = (predicted, PREDICTED) if requested is None else (requested, REQUESTED)
    fids = intra_fid(fake, groups.cpu(), real, real_labels, n_classes)
    scored = [f for f in fids if f is not None]
    out = {"intra_fid": fids, "intra_fid_mean": sum(scored) / len(scored) if scored else None,
           "intra_fid_classes": len(scored), "intra_fid_grouping": grouping}
    if requested is not None:
        out["conditional_accuracy"] = conditional_accuracy(predicted.cpu(), requested.cpu())
    return out
