"""The study's confirmatory verdicts, on the endpoint its design declares (`ablation.primary`, `margin`, `alpha`).

The family is every comparison the report makes on the primary metric: each variant against the control, each
later variant against each earlier one (m comparisons). Bonferroni across the family: each comparison is tested
at alpha / m. (Holm rejects a little more often, but no interval matches its decisions comparison by comparison;
Bonferroni's simultaneous intervals do, so each verdict can be read off the interval printed beside it.)

With d = variant − other, per seed (paired t when both variants have the same seeds, Welch's t otherwise):
- "<winner> better": the 1 − alpha/m simultaneous interval of d excludes 0 (equivalently m·p < alpha);
- "equivalent within ±Δ": TOST (Schuirmann 1987) at alpha/m: its 1 − 2·alpha/m interval lies inside (−Δ, Δ);
- "inconclusive with n seeds": neither. It comes with a design-stage estimate: the seeds per variant that would
  give 80% power to find a true difference of Δ under this same test and level, from the noncentral t, with the
  SD at its one-sided 90% upper confidence bound (not the point estimate, and never the observed difference:
  power computed from an observed effect adds nothing to p, Hoenig & Heisey 2001).
Each false "better" and each false "equivalent" has probability at most alpha/m, so with probability at least
1 − alpha every verdict of the family is right. The simulations in tests/reporting/test_verdicts.py check it.
A sequential design (sequential.py) runs the same tests at each look, at the level design.py calibrates for the
looks; a comparison neither better nor equivalent is "open" until its last look.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats as st

from . import stats
from .design import MAX_SEEDS, POWER, SD_CONFIDENCE, Design, sd_upper, seeds_needed, wilcoxon_can_pass

WILCOXON = "Wilcoxon signed-rank"


def decide(mean, se, df, margin: float, level: float, tost_level: float | None = None) -> dict[str, np.ndarray]:
    """The verdict's numbers for arrays of studies (any shape): mean difference, its standard error and degrees of
    freedom in, out: p (two-sided t), the 1 − level interval (lo, hi), TOST's p and its 1 − 2·tost_level interval,
    `better` (p < level) and `equivalent` (TOST p < tost_level, which is `level` unless given; its interval inside
    ±margin). A zero standard error (a constant difference) takes the limit of the t-test: p = 0 unless the
    difference is exactly 0."""
    tost_level = level if tost_level is None else tost_level
    mean, se, df = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (mean, se, df)))
    zero = se == 0
    safe = np.where(zero, 1.0, se)
    p = np.where(zero, (mean == 0).astype(float), 2 * st.t.sf(np.abs(mean) / safe, df))
    p_tost = np.maximum(st.t.sf((mean + margin) / safe, df), st.t.cdf((mean - margin) / safe, df))
    p_tost = np.where(zero, (np.abs(mean) >= margin).astype(float), p_tost)
    half, half_tost = st.t.ppf(1 - level / 2, df) * se, st.t.ppf(1 - tost_level, df) * se
    return dict(mean=mean, p=p, lo=mean - half, hi=mean + half, p_tost=p_tost, tost_lo=mean - half_tost,
                tost_hi=mean + half_tost, better=p < level, equivalent=p_tost < tost_level)


def paired(d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, se, df) of per-seed differences d (..., n)."""
    n = d.shape[-1]
    return d.mean(-1), d.std(-1, ddof=1) / math.sqrt(n), np.full(d.shape[:-1], n - 1.0)


def welch(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """(mean(a) − mean(b), its se, Welch–Satterthwaite df)."""
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)) if se > 0 else len(a) + len(b) - 2.0
    return float(a.mean() - b.mean()), se, df


@dataclass(frozen=True)
class Verdict:
    """One comparison of the primary family; diff = variant − other. Fields go to ablation.json as they are."""

    variant: str
    other: str
    metric: str
    verdict: str  # "better" | "equivalent" | "inconclusive" | "open" (a sequential design's next look) | "n/a"
    winner: str | None
    n_variant: int
    n_other: int
    n_pairs: int
    mean_variant: float
    mean_other: float
    test: str  # "paired t" | "Welch t" | "n/a"
    diff: float
    ci_low: float  # the 1 − alpha/m simultaneous interval (sequential: the 1 − boundary repeated one)
    ci_high: float
    ci_level: float
    tost_low: float  # TOST's 1 − 2·alpha/m interval (sequential: 1 − 2·tost_boundary)
    tost_high: float
    tost_level: float
    p: float  # unadjusted
    p_bonferroni: float
    p_tost_bonferroni: float
    favour: stats.Favour | None
    p_wilcoxon_bonferroni: float | None = None
    seeds_needed: int | None = None
    sd_upper: float | None = None  # the SD the seed estimate assumed
    fid_inf_diff: float | None = None
    fid_inf_low: float | None = None
    fid_inf_high: float | None = None
    note: str = ""
    reason: str = ""  # why n/a, or open before any look
    p_tost: float | None = None  # unadjusted, as p
    p_wilcoxon: float | None = None
    boundary: float | None = None  # the nominal two-sided level "better" was tested at (fixed design: alpha/m)
    tost_boundary: float | None = None  # the one-sided level of each of TOST's tests
    look: int | None = None  # sequential: the look (1, 2, ...) that decided it or last tested it; 0: none reached
    next_look: int | None = None  # open: the seeds per variant of the look that tests it next
    seeds_used: tuple[int, ...] = ()  # the seeds its test used
    sentence: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready (stats.json_ready)."""
        return stats.json_ready(asdict(self))


@dataclass(frozen=True)
class _Sample:
    """One comparison's inputs: the two variants' values by seed, and the per-seed differences if paired."""

    a: pd.Series
    b: pd.Series
    d: np.ndarray | None  # paired differences (same seed sets), else None

    @classmethod
    def of(cls, table: pd.DataFrame, variant: str, other: str, metric: str) -> "_Sample":
        a, b = stats.values(table, variant, metric), stats.values(table, other, metric)
        same = len(a) >= 2 and a.index.equals(b.index)
        return cls(a, b, (a - b).to_numpy() if same else None)

    def seeds(self) -> list:
        """The seeds either side has, sorted."""
        return sorted(set(self.a.index) | set(self.b.index))

    def moments(self) -> tuple[float, float, float]:
        if self.d is not None:
            return tuple(float(x) for x in paired(self.d))
        return welch(self.a.to_numpy(), self.b.to_numpy())

    def sd(self) -> tuple[float, float]:
        """(SD, its df) for the seed estimate: of the differences when paired, pooled otherwise."""
        if self.d is not None:
            return float(np.std(self.d, ddof=1)), len(self.d) - 1.0
        df = len(self.a) + len(self.b) - 2.0
        return math.sqrt(((len(self.a) - 1) * self.a.var() + (len(self.b) - 1) * self.b.var()) / df), df


def primary_family(table: pd.DataFrame, pairs: Sequence[tuple[str, str]], design: Design,
                   fid_inf: str | None = None) -> tuple[Design, list[Verdict]]:
    """The verdict of every pair on design.primary; m = the pairs that can be tested (2+ seeds on each side).
    `fid_inf`: the primary's FID∞ key (core.metrics), whose differences may add a note."""
    samples = [(v, o, _Sample.of(table, v, o, design.primary)) for v, o in pairs]
    design = replace(design, m=max(testable(table, pairs, design.primary), 1))
    return design, [_verdict(v, o, s, design, table, fid_inf) for v, o, s in samples]


def testable(table: pd.DataFrame, pairs: Sequence[tuple[str, str]], primary: str) -> int:
    """How many pairs have 2+ values of `primary` on each side: the family's m."""
    return sum(min(len(stats.values(table, v, primary)), len(stats.values(table, o, primary))) >= 2 for v, o in pairs)


def verdict_of(table: pd.DataFrame, variant: str, other: str, design: Design, fid_inf: str | None = None,
               look: int | None = None) -> Verdict:
    """One comparison of the family on the seeds of `table`. `look`: which look of design.looks this is (1, 2, ...;
    0: none reached yet): there a comparison neither better nor equivalent stays "open" until the last look."""
    return _verdict(variant, other, _Sample.of(table, variant, other, design.primary), design, table, fid_inf, look)


def _verdict(variant: str, other: str, s: _Sample, design: Design, table: pd.DataFrame,
             fid_inf: str | None, look: int | None = None) -> Verdict:
    base = dict(variant=variant, other=other, metric=design.primary, n_variant=len(s.a), n_other=len(s.b),
                n_pairs=len(s.a.index.intersection(s.b.index)), look=look, boundary=design.level,
                tost_boundary=design.tost_level, mean_variant=float(s.a.mean()) if len(s.a) else math.nan,
                mean_other=float(s.b.mean()) if len(s.b) else math.nan, seeds_used=tuple(map(int, s.seeds())),
                favour=stats.favour(s.a, s.b, variant, other, design.lower_is_better))
    if min(len(s.a), len(s.b)) < 2 or look == 0:
        return _worded(_untested(base, design, len(s.a), len(s.b)), design)
    mean, se, df = s.moments()
    r = {k: float(x) if k not in ("better", "equivalent") else bool(x)
         for k, x in decide(mean, se, df, design.margin, design.level, design.tost_level).items()}
    better = r["better"] and mean != 0
    verdict = "better" if better else "equivalent" if r["equivalent"] else "inconclusive"
    if verdict == "inconclusive" and look is not None and look < len(design.looks):
        verdict, base["next_look"] = "open", design.looks[look]
    extra = _beside(s, design, verdict)
    if fid_inf and fid_inf in table:
        extra.update(_fid_inf_check(table, variant, other, fid_inf, design, mean, better))
    v = Verdict(**base, verdict=verdict, test="paired t" if s.d is not None else "Welch t", diff=mean,
                winner=(variant if (mean < 0) == design.lower_is_better else other) if better else None,
                ci_low=r["lo"], ci_high=r["hi"], ci_level=1 - design.level, tost_low=r["tost_lo"],
                tost_high=r["tost_hi"], tost_level=1 - 2 * design.tost_level, p=r["p"], p_tost=r["p_tost"],
                p_bonferroni=min(1.0, design.m * r["p"]), p_tost_bonferroni=min(1.0, design.m * r["p_tost"]),
                **extra)
    return _worded(v, design)


def _untested(base: dict[str, Any], design: Design, n_a: int, n_b: int) -> Verdict:
    """n/a (too few values to test), or, for a sequential design, "open" before its first look."""
    if min(n_a, n_b) == 0:
        verdict, reason = "n/a", f"no {design.primary} values for {base['variant'] if n_a == 0 else base['other']}"
    elif base["look"] == 0:
        verdict, reason = "open", f"no look reached yet, the first is at {design.looks[0]} seeds per variant"
        base["next_look"] = design.looks[0]
    else:
        verdict, reason = "n/a", "a test needs at least 2 seeds per variant"
    nan = math.nan
    return Verdict(**base, verdict=verdict, winner=None, test="n/a", diff=base["mean_variant"] - base["mean_other"],
                   ci_low=nan, ci_high=nan, ci_level=1 - design.level, tost_low=nan, tost_high=nan,
                   tost_level=1 - 2 * design.tost_level, p=nan, p_bonferroni=nan, p_tost_bonferroni=nan,
                   reason=reason)


def _beside(s: _Sample, design: Design, verdict: str) -> dict[str, Any]:
    """The signed-rank test where it can pass the level, and an inconclusive verdict's seed estimate: for a new
    study of fresh seeds, a fixed design with each comparison at alpha/m (this one's level, if it is fixed)."""
    extra: dict[str, Any] = {}
    if s.d is not None and wilcoxon_can_pass(len(s.d), design.level):
        p_w = 1.0 if np.all(s.d == 0) else float(st.wilcoxon(s.d).pvalue)
        extra.update(p_wilcoxon=p_w, p_wilcoxon_bonferroni=min(1.0, design.m * p_w))
    if verdict == "inconclusive":
        sd, sd_df = s.sd()
        n_run = len(s.d) if s.d is not None else min(len(s.a), len(s.b))
        extra["seeds_needed"] = int(seeds_needed(sd, sd_df, n_run, design.margin, design.share, s.d is not None))
        extra["sd_upper"] = float(sd_upper(sd, sd_df))
    return extra


def _fid_inf_check(table: pd.DataFrame, variant: str, other: str, key: str, design: Design, diff: float,
                   better: bool) -> dict[str, Any]:
    """The same comparison on FID∞, with a note where it has the other sign, or, for a "better", where its own
    simultaneous interval includes 0."""
    s = _Sample.of(table, variant, other, key)
    if min(len(s.a), len(s.b)) < 2:
        return {}
    r = decide(*s.moments(), design.margin, design.level)
    d, lo, hi = (float(r[k]) for k in ("mean", "lo", "hi"))
    out: dict[str, Any] = dict(fid_inf_diff=d, fid_inf_low=lo, fid_inf_high=hi)
    if d * diff < 0 or (better and lo <= 0 <= hi):
        why = "has the other sign" if d * diff < 0 else "its interval includes 0"
        out["note"] = (f"note: on FID∞ (the sample-size-free FID of Chong & Forsyth 2020) the difference {why}: "
                       f"{stats.fmt_effect(d, lo, hi)}")
    return out


def _worded(v: Verdict, design: Design) -> Verdict:
    return replace(v, sentence=sentence(v, design))


def sentence(v: Verdict, design: Design) -> str:
    """The verdict in words, stored in ablation.json and printed as it is by the report, `dcgan-lab compare` and
    the MLflow ablation run."""
    label, margin, seeds = design.label, f"{design.margin:g}", stats.seeds_text(v.n_variant, v.n_other, v.n_pairs)
    if v.test == "n/a":  # n/a, or open before the first look
        means = f"{label} {stats.fmt_num(v.mean_variant, 3)} vs {stats.fmt_num(v.mean_other, 3)}"
        return f"{v.variant} vs {v.other}: {v.verdict} with {seeds} ({means}): {v.reason}"
    w = _wording(v, design)
    head, interval, effect = w["head"], w["interval"], stats.fmt_effect(v.diff, v.ci_low, v.ci_high)
    tost = f"{stats.fmt_pct(v.tost_level)} TOST interval"
    tail = [stats.favour_text(v.favour)] if v.favour else []
    if v.p_wilcoxon is not None:
        tail.append(f"{WILCOXON}: {w['wilcoxon']}")
    if v.verdict == "better":
        line = f"{head}: {v.winner} better{w['with_seeds']} on {label}: {effect} ({interval}, {v.test}, {w['p']})"
        if -design.margin < v.tost_low and v.tost_high < design.margin:
            tail.append(f"by less than the margin: the {tost} {stats.fmt_interval(v.diff, v.tost_low, v.tost_high)} "
                        f"lies inside ±{margin}")
    elif v.verdict == "equivalent":
        line = (f"{head}: equivalent within ±{margin}{w['with_seeds']} on {label}: "
                f"{stats.fmt_effect(v.diff, v.tost_low, v.tost_high)} ({tost}, inside ±{margin}, {v.test}, "
                f"{w['tost_p']}; the {interval} {stats.fmt_interval(v.diff, v.ci_low, v.ci_high)} includes 0)")
    else:  # inconclusive, or open until the next look
        line = (f"{head}: {v.verdict} with {seeds} on {label}: {effect} ({interval}, {v.test}, {w['p']}; it includes "
                f"0 and reaches beyond ±{margin})")
        tail.append(f"next look at {v.next_look} seeds per variant" if v.verdict == "open" else _estimate(v, design))
    if v.note:
        tail.append(v.note)
    return "; ".join([line, *tail])


def _wording(v: Verdict, design: Design) -> dict[str, str]:
    """What a fixed design's sentence and a sequential one's say differently: which look, the interval's name,
    and the p-values: Bonferroni-adjusted against alpha, or as they are against the boundary of every look."""
    if design.looks is None:
        return dict(head=f"{v.variant} vs {v.other}", interval=f"{stats.fmt_pct(v.ci_level)} simultaneous interval",
                    with_seeds="", p=f"Bonferroni p {stats.p_text(v.p_bonferroni, design.alpha)}",
                    tost_p=f"Bonferroni TOST p {stats.p_text(v.p_tost_bonferroni, design.alpha)}",
                    wilcoxon=f"Bonferroni p {stats.p_text(v.p_wilcoxon_bonferroni, design.alpha)}"
                    if v.p_wilcoxon_bonferroni is not None else "")

    def against(p: float, level: float) -> str:
        return f"p {stats.p_text(p, level)} against the boundary {level:.2g}"

    return dict(head=f"{v.variant} vs {v.other} at look {v.look} of {len(design.looks)}",
                interval=f"{stats.fmt_pct(v.ci_level)} repeated confidence interval",
                with_seeds=f" with {stats.seeds_text(v.n_variant, v.n_other, v.n_pairs)}",
                p=against(v.p, design.level), tost_p=f"TOST {against(v.p_tost, design.tost_level)}",
                wilcoxon=against(v.p_wilcoxon, design.level) if v.p_wilcoxon is not None else "")


def _estimate(v: Verdict, design: Design) -> str:
    """An inconclusive verdict's seed estimate, in words: for this test (a fixed design) or for a new study."""
    many = f"about {v.seeds_needed}" if v.seeds_needed <= MAX_SEEDS else f"more than {MAX_SEEDS}"
    resolve = f"a true difference of {design.margin:g} with {POWER:.0%} power"
    sd = f"SD at its {SD_CONFIDENCE:.0%} upper bound, {stats.fmt_num(v.sd_upper, 2)}"
    if design.looks is None:
        return f"{many} seeds per variant would resolve {resolve} under this test ({sd})"
    return (f"a new study of {many} fresh seeds per variant would resolve {resolve} (a fixed design, each comparison "
            f"at alpha/m = {design.share:.2g}; {sd})")


def outcome(v: Verdict, design: Design) -> str:
    """The verdict in a few words, for an MLflow tag or a table cell."""
    return {"better": f"{v.winner} better", "equivalent": f"equivalent within ±{design.margin:g}",
            "inconclusive": f"inconclusive with {stats.seeds_text(v.n_variant, v.n_other, v.n_pairs)}",
            "open": f"open: next look at {v.next_look} seeds"}.get(v.verdict, "n/a")
