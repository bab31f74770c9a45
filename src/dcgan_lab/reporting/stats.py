"""Seed-aware descriptive statistics for comparing GAN variants, and the formatting the report shares.

Everything here is exploratory: each variant's mean and seed-to-seed noise, and for a pair of variants the
difference with its unadjusted 95% interval and how many seeds favour each side (with a Clopper–Pearson bound).
Only the declared primary endpoint gets a verdict, in verdicts.py. Runs sharing a seed share weight init, data
order and latent noise, so they are paired by seed when both variants have the same seeds.

Degenerate input: when the values being compared are exactly constant (zero variance), scipy returns NaN (or
warns). We use the limit of the t interval instead: a constant difference d gives CI [d, d]. scipy's "Precision
loss" warning for nearly-identical data is silenced; its result is still the right limit.
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


@dataclass(frozen=True)
class Favour:
    """How many of the seeds both variants ran favour `side` (the side more seeds favour; the first on a tie)."""

    side: str
    k: int
    n: int
    share_low: float  # one-sided 95% Clopper–Pearson lower bound on the share of seeds that favour `side`


@dataclass(frozen=True)
class Comparison:
    """`variant` vs `other` on one metric, exploratory; diff = mean(variant) - mean(other)."""

    metric: str
    variant: str
    other: str
    n_variant: int
    n_other: int
    n_pairs: int  # seeds both variants have a value for
    mean_variant: float
    mean_other: float
    diff: float  # paired: mean of per-seed differences
    ci_low: float  # unadjusted 95% interval of diff (paired t, or Welch where the seed sets differ)
    ci_high: float
    test: str  # "paired t" | "Welch t" | "n/a"
    favour: Favour | None = None
    reason: str = ""  # why the interval is n/a

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready (json_ready)."""
        return json_ready(asdict(self))


def json_ready(x: Any, digits: int | None = None) -> Any:
    """`x` for json.dumps(allow_nan=False), e.g. ablation.json for DVC: every float that is NaN or inf becomes
    None, in dicts and lists at any depth; with `digits`, the other floats are rounded to that many decimals."""
    if isinstance(x, dict):
        return {k: json_ready(v, digits) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_ready(v, digits) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, float) and digits is not None:
        return round(x, digits)
    return x


def values(table: pd.DataFrame, variant: str, metric: str) -> pd.Series:
    """One variant's non-NaN values of `metric`, indexed by seed (sorted)."""
    rows = table[table["variant"].to_numpy() == variant]
    out = pd.Series(rows[metric].to_numpy(dtype=float), index=rows["seed"].to_numpy()).dropna()
    if out.index.duplicated().any():
        raise ValueError(f"duplicate seeds for variant {variant!r} on {metric!r}")
    return out.sort_index()


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
            x = values(table, variant, metric).to_numpy()
            n, sd = len(x), _sd(x)
            half = float(stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)) if n >= 2 else NAN
            mean = float(x.mean()) if n else NAN
            rows.append(dict(variant=variant, metric=metric, n_seeds=n, mean=mean, sd=sd, ci95=half))
    return pd.DataFrame(rows, columns=["variant", "metric", "n_seeds", "mean", "sd", "ci95"])


def _interval(res, d_const: float | None) -> tuple[float, float]:
    if d_const is not None:
        return d_const, d_const
    ci = res.confidence_interval(0.95)
    return float(ci.low), float(ci.high)


def favour(a: pd.Series, b: pd.Series, variant: str, other: str, lower_is_better: bool) -> Favour | None:
    """Per seed both have: does `variant` or `other` score better? None without a common seed."""
    common = a.index.intersection(b.index)
    if not len(common):
        return None
    d = (a[common] - b[common]).to_numpy()
    better, worse = (d < 0, d > 0) if lower_is_better else (d > 0, d < 0)
    k_variant, k_other = int(better.sum()), int(worse.sum())  # a tie favours neither
    side, k = (variant, k_variant) if k_variant >= k_other else (other, k_other)
    low = stats.binomtest(k, len(d), alternative="greater").proportion_ci(0.95, method="exact").low
    return Favour(side, k, len(d), float(low))


def compare(table: pd.DataFrame, variant: str, other: str, metric: str, lower_is_better: bool) -> Comparison:
    """`variant` vs `other` on `metric`: paired t interval when the seed sets match, Welch's otherwise."""
    sa, sb = values(table, variant, metric), values(table, other, metric)
    common = sa.index.intersection(sb.index)
    na, nb = len(sa), len(sb)
    base = dict(metric=metric, variant=variant, other=other, n_variant=na, n_other=nb, n_pairs=len(common),
                mean_variant=float(sa.mean()) if na else NAN, mean_other=float(sb.mean()) if nb else NAN,
                favour=favour(sa, sb, variant, other, lower_is_better))
    if min(na, nb) < 2:
        reason = (f"no {metric} values for {variant if na == 0 else other}" if min(na, nb) == 0 else
                  "an interval needs at least 2 seeds per variant")
        return Comparison(**base, diff=base["mean_variant"] - base["mean_other"], ci_low=NAN, ci_high=NAN,
                          test="n/a", reason=reason)
    if sa.index.equals(sb.index):  # same seed set: pair by seed
        d = (sa - sb).to_numpy()
        const = float(d[0]) if np.ptp(d) == 0 else None
        res = None if const is not None else _quiet(stats.ttest_rel, sa.to_numpy(), sb.to_numpy())
        low, high = _interval(res, const)
        return Comparison(**base, diff=float(d.mean()), ci_low=low, ci_high=high, test="paired t")
    a, b = sa.to_numpy(), sb.to_numpy()
    const = float(a[0] - b[0]) if np.ptp(a) == 0 and np.ptp(b) == 0 else None
    res = None if const is not None else _quiet(stats.ttest_ind, a, b, equal_var=False)
    low, high = _interval(res, const)
    return Comparison(**base, diff=float(a.mean() - b.mean()), ci_low=low, ci_high=high, test="Welch t")


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
    digits of the CI half-width (coarser hides the interval, finer digits are noise); more where a bound
    that is not 0 would print as 0.
    """
    if not (math.isfinite(low) and math.isfinite(high)):
        return fmt_num(diff, sign=True)
    if diff == low == high == 0:
        return "0 [0, 0]"
    dec = max(_decimals(diff), _decimals(low), _decimals(high))
    if high - low > 1e-9 * max(abs(diff), abs(low), abs(high)):  # narrower is rounding noise: no interval
        half = (high - low) / 2
        dec = min(max(dec, _decimals(half, 1)), _decimals(half, 3))
    while dec < 8 and any(b != 0 and round(b, dec) == 0 for b in (low, high)):
        dec += 1  # a bound that is not 0 never prints as 0: which side of 0 it lies on is the verdict
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


def fmt_pct(confidence: float) -> str:
    """An interval's confidence level: 0.991667 -> '99.2%'."""
    return f"{100 * confidence:.3g}%"


def p_text(p: float, alpha: float = 0.05) -> str:
    """'= 0.41' or '< 0.001', for a sentence."""
    return fmt_p(p, alpha) if p < 0.001 else f"= {fmt_p(p, alpha)}"


def fmt_interval(diff: float, low: float, high: float) -> str:
    """'[−2.6, −1.4]', with the decimals fmt_effect would give."""
    return fmt_effect(diff, low, high).split(" ", 1)[1]


def seeds_text(n_variant: int, n_other: int, n_pairs: int) -> str:
    if n_variant == n_other == n_pairs:
        return f"{n_pairs} seed" + ("" if n_pairs == 1 else "s")
    return f"{n_variant} vs {n_other} seeds"


def favour_text(f: Favour) -> str:
    return (f"{f.k} of {f.n} seed{'s' * (f.n != 1)} favour {f.side} (share ≥ {f.share_low:.2f}, one-sided 95% "
            f"Clopper–Pearson)")


def exploratory_line(c: Comparison, label: str) -> str:
    """One plain-words line that never names a winner: the difference, its unadjusted interval, the seed count."""
    head = f"{c.variant} vs {c.other}, {label} (exploratory)"
    if c.test == "n/a":
        return (f"{head}: {fmt_num(c.mean_variant, 3)} vs {fmt_num(c.mean_other, 3)} with "
                f"{seeds_text(c.n_variant, c.n_other, c.n_pairs)}: {c.reason}")
    line = f"{head}: {fmt_effect(c.diff, c.ci_low, c.ci_high)} (95% interval, not adjusted, {c.test})"
    return f"{line}; {favour_text(c.favour)}" if c.favour else line


EXPLORATORY_TEXT = (
    "Every other score, for description only: the difference of means with its unadjusted 95% interval (paired "
    "by seed) and how many seeds favour each side, with a one-sided 95% Clopper–Pearson lower bound on that share. "
    "None of these tests the study's question, so none is worded \"better\"; a pattern here is a hypothesis for "
    "a later study's declared endpoint.")


def exploratory_table(comparisons: list[Comparison], label: Callable[[str], str]) -> list[str]:
    """The report's exploratory table, a row per comparison; label(metric): its display name."""
    lines = ["| metric | variant | vs | mean | mean (other) | diff [95% CI, unadjusted] | test | seeds favouring |",
             "|---|---|---|---|---|---|---|---|"]
    for c in comparisons:
        f = c.favour
        lines.append(f"| {label(c.metric)} | {c.variant} | {c.other} | {fmt_num(c.mean_variant, 3)} | "
                     f"{fmt_num(c.mean_other, 3)} | {fmt_effect(c.diff, c.ci_low, c.ci_high)} | {c.test} | "
                     + (f"{f.k}/{f.n} {f.side} (≥ {f.share_low:.2f})" if f else "–") + " |")
    return lines
