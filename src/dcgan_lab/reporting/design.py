"""The study's declared design and the numbers planned from it: the family's per-comparison level, the seeds a
comparison would need (noncentral t), when the signed-rank test can reject at all, and the alpha each look of a
sequential design may spend. verdicts.py decides with these; nothing here reads results.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats as st

POWER = 0.80  # the seed estimate's target power
SD_CONFIDENCE = 0.90  # the upper confidence bound on the SD that the seed estimate uses
MAX_SEEDS = 1000  # above this the estimate says "more than 1000"


@dataclass(frozen=True)
class Design:
    """What the study declared before it ran (params.yaml `ablation:`), and the size of its family."""

    primary: str  # the metric that decides
    label: str  # its display name
    lower_is_better: bool
    margin: float  # Δ, in the metric's units
    alpha: float  # family-wise
    m: int = 1  # comparisons in the family

    @property
    def level(self) -> float:
        """Each comparison's share of alpha (Bonferroni)."""
        return self.alpha / max(self.m, 1)


def power(n, sd, margin: float, level: float, is_paired: bool = True) -> np.ndarray:
    """P(a verdict of "better" | true difference = margin) with n seeds per variant, the test at `level`, and
    true SD `sd` (of the per-seed differences when paired, of one variant's values otherwise): noncentral t."""
    n, sd = np.broadcast_arrays(np.asarray(n, dtype=float), np.asarray(sd, dtype=float))
    df = n - 1 if is_paired else 2 * n - 2
    se = sd / np.sqrt(n) if is_paired else sd * np.sqrt(2 / n)
    nc = margin / np.where(se > 0, se, 1.0)
    crit = st.t.ppf(1 - level / 2, df)
    with np.errstate(invalid="ignore"):
        upper, lower = st.nct.sf(crit, df, nc), st.nct.cdf(-crit, df, nc)
    # scipy's noncentral t gives NaN far in a tail (large nc and df; or the side away from nc, where the chance is
    # ~0): each tail on its own falls back on its normal limit, exact enough there. (Both falling back when only
    # the negligible side was NaN gave z-test power at 4 df: 0.09 for 0.42 at n 5, sd 0.3, level 0.00093.)
    upper = np.where(np.isfinite(upper), upper, st.norm.sf(crit - nc))
    lower = np.where(np.isfinite(lower), lower, st.norm.cdf(-crit - nc))
    return np.where(se > 0, upper + lower, 1.0)


def sd_upper(sd, df, confidence: float = SD_CONFIDENCE):
    """One-sided upper confidence bound on an SD estimated with df degrees of freedom (chi-square)."""
    return np.asarray(sd, dtype=float) * np.sqrt(df / st.chi2.ppf(1 - confidence, df))


def seeds_needed(sd, df, n_run, margin: float, level: float, is_paired: bool = True) -> np.ndarray:
    """The fewest seeds per variant, more than n_run, that give POWER to find a true difference of `margin`
    (power() at the SD's upper bound sd_upper(sd, df)); MAX_SEEDS + 1 where even MAX_SEEDS would not."""
    sd_u = sd_upper(sd, df)
    lo = np.broadcast_to(np.asarray(n_run, dtype=float), sd_u.shape).copy()  # below: too few, or already run
    hi = np.full(sd_u.shape, float(MAX_SEEDS))
    enough = power(hi, sd_u, margin, level, is_paired) >= POWER
    while np.any(open_ := hi - lo > 1):  # bisection: power grows with n
        mid = np.floor((lo + hi) / 2)
        ok = power(mid, sd_u, margin, level, is_paired) >= POWER
        hi, lo = np.where(open_ & ok, mid, hi), np.where(open_ & ~ok, mid, lo)
    return np.where(enough, hi, MAX_SEEDS + 1).astype(int)


def wilcoxon_can_pass(n: int, level: float) -> bool:
    """Whether the exact signed-rank test with n pairs can reach p < level at all: its smallest p is 2 / 2^n."""
    return 2.0 ** (1 - n) < level


def wilcoxon_seeds(level: float) -> int:
    """The fewest pairs with which the signed-rank test can pass `level`."""
    return math.floor(1 - math.log2(level)) + 1


def look_alphas(looks: Sequence[int], alpha: float) -> list[float]:
    """The family-wise alpha each look of a sequential design spends (looks: seeds per variant at each look,
    increasing): O'Brien–Fleming-type spending (Lan & DeMets 1983), a(t) = 2 − 2Φ(z_{1−alpha/2} / √t) at
    information fraction t = looks[k] / looks[-1]; look k spends a(t_k) − a(t_{k−1}). The shares add up to
    alpha, so by the union bound the chance of any false verdict over all looks is at most alpha."""
    z = st.norm.ppf(1 - alpha / 2)
    spent = [2 - 2 * st.norm.cdf(z / math.sqrt(n / looks[-1])) for n in looks]
    return [b - a for a, b in zip([0.0, *spent[:-1]], spent)]
