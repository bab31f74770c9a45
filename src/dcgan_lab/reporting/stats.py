"""Seed-aware statistics for comparing GAN variants (FID, KID, IS, precision, recall, ...).

A report may name a winner only when a test says the difference is bigger than the
seed-to-seed noise, after a Holm correction across the comparisons made for a metric.
Runs sharing a seed share weight init, data order and latent noise, so they are paired
by seed: a paired t-test then removes the seed effect that Welch's test has to carry.

Degenerate input: when the values being tested are exactly constant (zero variance),
scipy returns NaN (or warns). We use the limit of the t-statistic instead: a constant
difference of exactly 0 gives p = 1 and CI [0, 0]; a constant non-zero difference d gives
p = 0 and CI [d, d] (scipy's own answer for that case). scipy's "Precision loss" warning
for nearly-identical data is silenced; its result is still the right limit.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

NAN = float("nan")
MINUS = "\u2212"
POWER = 0.80
MIN_WILCOXON_PAIRS = 5


@dataclass(frozen=True)
class Comparison:
    """`variant` vs `other` on one metric; diff = mean(variant) - mean(other)."""

    metric: str
    variant: str
    other: str
    n_variant: int
    n_other: int
    n_pairs: int  # seeds both variants have a value for
    mean_variant: float
    mean_other: float
    diff: float  # paired: mean of per-seed differences
    ci_low: float  # 95% CI of diff (paired t or Welch interval)
    ci_high: float
    test: str  # "paired t" | "Welch t" | "n/a"
    p: float  # primary test's p (unadjusted)
    p_paired: float = NAN  # on the common seeds, whenever there are >= 2 pairs
    p_welch: float = NAN
    p_wilcoxon: float = NAN  # on the common seeds, only with >= 5 pairs
    p_holm: float = NAN  # filled in by compare_all (family = one metric)
    seeds_needed: int | None = None  # rough seeds for 80% power at this diff
    reason: str = ""  # why the test is n/a

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN and inf become None, so json.dumps(allow_nan=False) works."""
        return {k: None if isinstance(v, float) and not math.isfinite(v) else v
                for k, v in asdict(self).items()}


def _values(table: pd.DataFrame, variant: str, metric: str) -> pd.Series:
    """One variant's non-NaN values of `metric`, indexed by seed (sorted)."""
    rows = table.loc[table["variant"] == variant, ["seed", metric]].dropna()
    if rows["seed"].duplicated().any():
        raise ValueError(f"duplicate seeds for variant {variant!r} on {metric!r}")
    return rows.set_index("seed")[metric].astype(float).sort_index()


def _quiet(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call scipy without its 'Precision loss' warning for nearly-identical data."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Precision loss", category=RuntimeWarning)
        return fn(*args, **kwargs)


def _sd(x: np.ndarray) -> float:
    return float(np.std(x, ddof=1)) if len(x) >= 2 else NAN


def noise_floor(table: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Per variant and metric: seed count, mean, seed-to-seed SD and 95% t half-width."""
    rows = []
    for variant in pd.unique(table["variant"]):
        for metric in metrics:
            x = _values(table, variant, metric).to_numpy()
            n, sd = len(x), _sd(x)
            half = float(stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)) if n >= 2 else NAN
            mean = float(x.mean()) if n else NAN
            rows.append(dict(variant=variant, metric=metric, n_seeds=n, mean=mean, sd=sd, ci95=half))
    return pd.DataFrame(rows, columns=["variant", "metric", "n_seeds", "mean", "sd", "ci95"])


def _constant(diff: float) -> tuple[float, float, float]:
    """p and CI for zero-variance data: the limit of the t-test (see module docstring)."""
    return (1.0 if diff == 0 else 0.0), diff, diff


def _paired(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Paired t-test (scipy.stats.ttest_rel): p, CI low, CI high of the mean difference."""
    d = a - b
    if np.ptp(d) == 0:
        return _constant(float(d[0]))
    res = _quiet(stats.ttest_rel, a, b)
    ci = res.confidence_interval(0.95)
    return float(res.pvalue), float(ci.low), float(ci.high)


def _welch(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Welch's t-test (ttest_ind, equal_var=False): p, CI of mean(a) - mean(b)."""
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return _constant(float(a[0] - b[0]))
    res = _quiet(stats.ttest_ind, a, b, equal_var=False)
    ci = res.confidence_interval(0.95)
    return float(res.pvalue), float(ci.low), float(ci.high)


def _wilcoxon(d: np.ndarray) -> float:
    """Signed-rank p; all-zero differences are indistinguishable (p = 1, scipy warns)."""
    if np.all(d == 0):
        return 1.0
    return float(_quiet(stats.wilcoxon, d).pvalue)


def _seeds_needed(diff: float, sd: float, paired: bool) -> int | None:
    """Seeds for 80% power, two-sided alpha 0.05, normal approximation (rough guide).

    paired: n = ((z_.975 + z_.80) sd_diff / |diff|)^2; unpaired, per group:
    n = 2 ((z_.975 + z_.80) pooled_sd / |diff|)^2. Ceil, at least 2.
    """
    if diff == 0 or not math.isfinite(diff) or not math.isfinite(sd):
        return None
    z = stats.norm.ppf(0.975) + stats.norm.ppf(POWER)
    n = (z * sd / abs(diff)) ** 2 * (1 if paired else 2)
    return max(2, math.ceil(n))


def _pooled_sd(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = len(a), len(b)
    return math.sqrt(((na - 1) * _sd(a) ** 2 + (nb - 1) * _sd(b) ** 2) / (na + nb - 2))


def compare(table: pd.DataFrame, variant: str, other: str, metric: str) -> Comparison:
    """Test `variant` against `other` on `metric`; paired by seed when the seed sets match."""
    sa, sb = _values(table, variant, metric), _values(table, other, metric)
    common = sa.index.intersection(sb.index)
    d = (sa[common] - sb[common]).to_numpy()
    a, b = sa.to_numpy(), sb.to_numpy()
    na, nb = len(a), len(b)
    mean_a, mean_b = (float(a.mean()) if na else NAN), (float(b.mean()) if nb else NAN)
    base = dict(metric=metric, variant=variant, other=other, n_variant=na, n_other=nb,
                n_pairs=len(common), mean_variant=mean_a, mean_other=mean_b)
    if min(na, nb) < 2:
        k = min(na, nb)
        reason = (f"no {metric} values for {variant if na == 0 else other}" if k == 0 else
                  "a test needs at least 2 seeds per variant")
        return Comparison(**base, diff=mean_a - mean_b, ci_low=NAN, ci_high=NAN, test="n/a",
                          p=NAN, reason=reason)
    paired = _paired(sa[common].to_numpy(), sb[common].to_numpy()) if len(common) >= 2 else None
    p_welch, w_low, w_high = _welch(a, b)
    p_wil = _wilcoxon(d) if len(common) >= MIN_WILCOXON_PAIRS else NAN
    extra = dict(p_paired=paired[0] if paired else NAN, p_welch=p_welch, p_wilcoxon=p_wil)
    if paired and len(common) == na == nb:  # same seed set: pair by seed
        diff = float(d.mean())
        p, low, high = paired
        return Comparison(**base, diff=diff, ci_low=low, ci_high=high, test="paired t", p=p,
                          seeds_needed=_seeds_needed(diff, _sd(d), paired=True), **extra)
    diff = mean_a - mean_b
    return Comparison(**base, diff=diff, ci_low=w_low, ci_high=w_high, test="Welch t", p=p_welch,
                      seeds_needed=_seeds_needed(diff, _pooled_sd(a, b), paired=False), **extra)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni step-down adjusted p-values; NaN stays NaN and is not counted in m."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, NAN)
    ok = np.flatnonzero(~np.isnan(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = (len(order) - np.arange(len(order))) * p[order]
    out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out


def compare_all(table: pd.DataFrame, pairs: Sequence[tuple[str, str]],
                metrics: Sequence[str]) -> list[Comparison]:
    """Every pair on every metric; p_holm adjusts across one metric's comparisons."""
    out: list[Comparison] = []
    for metric in metrics:
        family = [compare(table, v, o, metric) for v, o in pairs]
        adjusted = holm([c.p for c in family])
        out += [replace(c, p_holm=float(q)) for c, q in zip(family, adjusted)]
    return out


def pairs_for(variants: Sequence[str], control: str) -> list[tuple[str, str]]:
    """Each variant vs the control, then every later variant vs every earlier non-control."""
    if control not in variants:
        raise ValueError(f"control {control!r} not among variants")
    rest = [v for v in variants if v != control]
    return [(v, control) for v in rest] + [
        (later, earlier) for i, earlier in enumerate(rest) for later in rest[i + 1:]]


def _decimals(x: float, sig: int = 2) -> int:
    """Decimals that show `sig` significant digits of x."""
    return 0 if x == 0 else max(0, sig - 1 - math.floor(math.log10(abs(x))))


def fmt_num(x: float | None, sig: int = 2, sign: bool = False, dec: int | None = None) -> str:
    """`sig` significant digits (or `dec` decimals), real minus sign, '–' when missing."""
    if x is None or not math.isfinite(x):
        return "–"
    if x == 0 and dec is None:
        return "0"
    dec = _decimals(x, sig) if dec is None else dec
    return (f"{x:+.{dec}f}" if sign else f"{x:.{dec}f}").replace("-", MINUS)


def fmt_effect(diff: float, low: float, high: float) -> str:
    """'−2.0 [−2.6, −1.4]': one decimal count for all three, so they line up.

    2 significant digits of the most precise of them, at least 1 and at most 3 significant
    digits of the CI half-width (coarser hides the interval, finer digits are noise).
    """
    if not (math.isfinite(low) and math.isfinite(high)):
        return fmt_num(diff, sign=True)
    if diff == low == high == 0:
        return "0 [0, 0]"
    dec = max(_decimals(diff), _decimals(low), _decimals(high))
    if high > low:
        half = (high - low) / 2
        dec = min(max(dec, _decimals(half, 1)), _decimals(half, 3))
    return f"{fmt_num(diff, sign=True, dec=dec)} [{fmt_num(low, dec=dec)}, {fmt_num(high, dec=dec)}]"


def fmt_p(p: float, alpha: float = 0.05) -> str:
    """2 significant digits ('0.004', '0.41', '< 0.001'); more if rounding would cross alpha."""
    if not math.isfinite(p):
        return "–"
    if p < 0.001:
        return "< 0.001"
    for digits in range(2, 7):
        s = f"{p:.{digits}g}"
        if (float(s) < alpha) == (p < alpha):
            break
    return s


def _seeds_text(c: Comparison) -> str:
    if c.n_variant == c.n_other == c.n_pairs:
        return f"{c.n_pairs} seed" + ("" if c.n_pairs == 1 else "s")
    return f"{c.n_variant} vs {c.n_other} seeds"


def verdict(c: Comparison, lower_is_better: bool, label: str, alpha: float = 0.05) -> str:
    """One plain-words line; names a winner only when the Holm-adjusted p < alpha."""
    head = f"{c.variant} vs {c.other}"
    if c.test == "n/a":
        means = f"{label} {fmt_num(c.mean_variant, 3)} vs {fmt_num(c.mean_other, 3)}"
        return f"{head}: n/a with {_seeds_text(c)} ({means}): {c.reason}"
    # compare() alone has no Holm family: then the raw p is used, and the line says so
    p, how = (c.p_holm, f"{c.test}, Holm") if math.isfinite(c.p_holm) else (c.p, c.test)
    ptxt = fmt_p(p, alpha) if p < 0.001 else f"= {fmt_p(p, alpha)}"
    effect = f"{label} {fmt_effect(c.diff, c.ci_low, c.ci_high)}"
    if p < alpha and c.diff != 0:
        better = c.variant if (c.diff < 0) == lower_is_better else c.other
        return f"{head}: {effect}, p {ptxt} ({how}): {better} better"
    line = f"{head}: not distinguishable with {_seeds_text(c)} ({effect}, p {ptxt}, {how})"
    have = c.n_pairs if c.test == "paired t" else min(c.n_variant, c.n_other)
    if c.seeds_needed is None:
        return line
    if c.seeds_needed > have:
        return f"{line}; about {c.seeds_needed} seeds would resolve a difference this size"
    return (f"{line}; borderline (a rough power estimate says {c.seeds_needed} seeds would do, "
            f"{have} were run): a few more seeds should settle it")


MARKDOWN_COLUMNS = ["variant", "vs", "metric", "mean", "mean (other)", "diff [95% CI]", "test",
                    "p", "p (Welch)", "p (Wilcoxon)", "p (Holm)", "seeds for 80% power"]


def markdown_table(comparisons: Sequence[Comparison], labels: dict[str, str] | None = None) -> str:
    """Markdown table of comparisons; `labels` maps metric keys to display names."""
    labels = labels or {}
    lines = ["| " + " | ".join(MARKDOWN_COLUMNS) + " |", "|" + "---|" * len(MARKDOWN_COLUMNS)]
    for c in comparisons:
        cells = [c.variant, c.other, labels.get(c.metric, c.metric), fmt_num(c.mean_variant, 3),
                 fmt_num(c.mean_other, 3), fmt_effect(c.diff, c.ci_low, c.ci_high), c.test,
                 fmt_p(c.p), fmt_p(c.p_welch), fmt_p(c.p_wilcoxon), fmt_p(c.p_holm),
                 "–" if c.seeds_needed is None else str(c.seeds_needed)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
