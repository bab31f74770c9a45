"""The study's declared design and the numbers planned from it: the family's per-comparison level, the boundary
that keeps it over the looks of a sequential design, the seeds a comparison would need (noncentral t), and when the
signed-rank test can reject at all. verdicts.py and sequential.py decide with these; nothing here reads results.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as st

POWER = 0.80  # the seed estimate's target power
SD_CONFIDENCE = 0.90  # the upper confidence bound on the SD that the seed estimate uses
MAX_SEEDS = 1000  # above this the estimate says "more than 1000"
BOUNDARY_DRAWS = 10_000  # null studies per unit of 1 / rate: the boundary's Monte Carlo error is about 1% of it
MAX_BOUNDARY_VALUES = 8_000_000  # t statistics held at once (64 MB): 4 million studies of 2 looks, about 1 s


@dataclass(frozen=True)
class Design:
    """What the study declared before it ran (params.yaml `ablation:`), and the size of its family."""

    primary: str  # the metric that decides
    label: str  # its display name
    lower_is_better: bool
    margin: float  # Δ, in the metric's units
    alpha: float  # family-wise, over every look
    m: int = 1  # comparisons in the family
    looks: tuple[int, ...] | None = None  # seeds per variant at each look; None: a fixed design, one look

    @property
    def share(self) -> float:
        """Each comparison's share of alpha (Bonferroni): its chance of a false verdict over the whole study."""
        return self.alpha / max(self.m, 1)

    @property
    def level(self) -> float:
        """The two-sided nominal level of "better" at every look: the share itself for a fixed design, the
        calibrated boundary (pocock_level) for a sequential one, so that all looks together spend the share."""
        return self.share if self.looks is None else pocock_level(self.looks, self.share, two_sided=True)

    @property
    def tost_level(self) -> float:
        """The one-sided nominal level of each of TOST's two tests at every look, calibrated the same way."""
        return self.share if self.looks is None else pocock_level(self.looks, self.share, two_sided=False)


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


@functools.lru_cache(maxsize=None)
def pocock_level(looks: tuple[int, ...], rate: float, two_sided: bool = True, seed: int = 0) -> float:
    """The constant nominal level c at which a paired t test repeated at each look (looks[k] seeds, df looks[k] − 1)
    rejects a true null at some look with probability `rate`: Pocock's (1977) constant boundary, for the t statistic
    and normal per-seed differences. One-sided (TOST's tests), or two-sided with c split evenly between the sides.

    The t statistics' joint law does not depend on the SD, so c depends only on the looks and the rate. Seeded
    Monte Carlo (null_t_paths) with bisection on c between rate / K (Bonferroni over the K looks) and rate; the first
    look's share is c exactly, only the later looks' extra rejections are simulated, and their estimate is taken at
    its upper bound (+2 Monte Carlo SE), so the simulation's own error errs on the safe side. About 0.3 s, once per
    process."""
    if len(looks) == 1:
        return rate
    n_draws = int(min(BOUNDARY_DRAWS / rate, MAX_BOUNDARY_VALUES / len(looks)))  # fewer: a wider safety margin
    t = null_t_paths(looks, n_draws, seed)
    t = np.abs(t) if two_sided else t
    df = np.asarray(looks, dtype=float) - 1

    def rejects(c: float) -> float:
        crit = st.t.ppf(1 - c / 2 if two_sided else 1 - c, df)[:, None]
        later = float(((t[1:] > crit[1:]).any(0) & (t[0] <= crit[0])).mean())
        return c + later + 2 * math.sqrt(later * (1 - later) / n_draws)

    lo, hi = rate / len(looks), rate
    for _ in range(20):  # rejects() grows with c; 20 halvings leave 1e-6 of the width, far under the MC error
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if rejects(mid) <= rate else (lo, mid)
    return lo


def null_t_paths(looks: tuple[int, ...], n_draws: int, seed: int = 0) -> np.ndarray:
    """(K, n_draws) paired t statistics at each look of n_draws null studies (per-seed differences N(0, 1)), from
    sufficient statistics: each look's new seeds add a sum, N(0, k), and a within-sum of squares, chi-square(k − 1),
    merged into the running ones (the parallel variance formula), so a study costs 2 draws per look, not looks[-1]."""
    rng = np.random.default_rng(seed)
    n, total, ss, out = 0, np.zeros(n_draws), np.zeros(n_draws), []
    for look in looks:
        k = look - n
        s = rng.standard_normal(n_draws) * math.sqrt(k)
        q = rng.chisquare(k - 1, n_draws) if k > 1 else 0.0
        ss = ss + q + (n * k / look * (total / n - s / k) ** 2 if n else 0.0)
        n, total = look, total + s
        out.append((total / n) / np.sqrt(ss / ((n - 1) * n)))
    return np.stack(out)


def next_look(looks: tuple[int, ...], n: int) -> int | None:
    """The first look of more than n seeds per variant; None when none is left."""
    return next((look for look in looks if look > n), None)
