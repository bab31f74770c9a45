"""FID∞ (Chong & Forsyth 2020, "Effectively Unbiased FID and Inception Score and where to find them"):
FID extrapolated to infinitely many samples, so that scores from different sample counts compare.

FID computed from N samples is biased upwards, and the bias is close to linear in 1/N. The FID of random
subsets of the fake features at several counts N, fitted by FID = a + b/N (least squares), gives
FID∞ = a, the intercept at 1/N = 0. The real statistics come from all M real features, once: FID∞ removes
the fake side's bias, and the real side's (also about 1/M, the same for every generator scored against
that set) stays, so two samples of one distribution score a little above 0.

The counts are evenly spaced in 1/N between 1/N_min and 1/N, N being every fake sample, with
N_min = min(2,500, N // 4): for N >= 10,000 the fit runs from 2,500 up (Chong & Forsyth fit from 5,000 to
50,000 with Inception features), and a smaller N still spans a factor of 4 in N. The largest count is every
sample in its given order, so its FID is the overall FID exactly. Below MIN_SAMPLES fake samples there is
no fit: FID∞ is None (eval.json: null) and `reason` says why. At small counts the 1/N law is rougher (terms in
1/N² matter), so a FID∞ from a few hundred samples is a coarse estimate.

Every FID is torch-fidelity's own (`fid_features_to_statistics`, `fid_statistics_to_metric`), as in
per_class.py; nothing here computes a Fréchet distance by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch_fidelity import metric_fid

MIN_COUNT = 2500  # the smallest subset, given at least 4x as many samples
N_COUNTS = 8  # sample counts in the fit, the largest = every sample
MIN_SAMPLES = 20  # fewer fake samples: no fit (the smallest subset, n // 4, would hold under 5)


@dataclass(frozen=True)
class FidInfinity:
    value: float | None  # FID∞, the fit's intercept at 1/N = 0; None when there is no fit (see `reason`)
    counts: tuple[int, ...]  # sample counts of the fake set, ascending; the last is every sample
    fids: tuple[float, ...]  # torch-fidelity's FID at each count
    reason: str | None = None  # why `value` is None


def sample_counts(n: int) -> list[int]:
    """Up to N_COUNTS distinct counts evenly spaced in 1/count from 1/min(MIN_COUNT, n // 4) to 1/n, ascending."""
    inverse = np.linspace(1.0 / min(MIN_COUNT, n // 4), 1.0 / n, N_COUNTS)
    return sorted({int(round(1.0 / x)) for x in inverse})


def _fid(fake: torch.Tensor, real_stats: dict) -> float:
    stats = metric_fid.fid_features_to_statistics(fake)
    return float(metric_fid.fid_statistics_to_metric(stats, real_stats, False)[metric_fid.KEY_METRIC_FID])


def fid_infinity(fake: torch.Tensor, real: torch.Tensor, seed: int) -> FidInfinity:
    """FID∞ of fake features (N, D) against real features (M, D), both on the CPU as torch-fidelity extracted
    them. Each count below N takes its own random subset of the fake rows, drawn without replacement by a
    torch.Generator seeded with `seed`: the same inputs and seed give the same answer."""
    n = len(fake)
    if n < MIN_SAMPLES:
        return FidInfinity(None, (), (), f"{n} fake samples; FID∞ needs at least {MIN_SAMPLES}")
    counts = sample_counts(n)  # 7 or 8 of them from n >= MIN_SAMPLES
    real_stats = metric_fid.fid_features_to_statistics(real)
    rng = torch.Generator().manual_seed(seed)
    fids = [_fid(fake if k == n else fake[torch.randperm(n, generator=rng)[:k]], real_stats) for k in counts]
    _, intercept = np.polyfit(1.0 / np.array(counts, dtype=np.float64), np.array(fids), 1)
    return FidInfinity(float(intercept), tuple(counts), tuple(fids))
