"""Does each primary verdict survive a change of feature space? Every comparison of the primary family re-decided in
the second feature space (evaluate.second_extractor, evaluation/second_space.py), by the same design: the same
tests, looks, alpha and family size, on the primary endpoint measured there (ema_fid -> ema_second_fid), and marked
"holds in both spaces" or "differs in the second space: <its verdict there>".

A robustness check, never a second decision: the study's verdicts stay the first space's, so deciding in two spaces
does not become a second family that loosens the error rate. The margin is in the metric's units, which differ
between spaces, so it is carried over as the same fraction of the control's distance from real data, its mean FID
above the real-vs-real floor (reference.json) at the first look's seeds, as non-inferiority trials state a margin as
a fraction of the active control's effect: Δ₂ = Δ · (control₂ − floor₂) / (control₁ − floor₁). The floors alone
would not do: a space's floor is mostly the estimator's bias, which grows with its dimension, so a floor ratio
(26.6 for the committed study's 256- over 64-dimensional space) gave a margin wider than the control's whole
distance from real data there. "better" does not depend on Δ; "equivalent" does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Sequence

import pandas as pd

from ..core.metrics import METRICS, in_second_space
from . import sequential, stats
from .design import Design
from .sequential import DECIDED, usable_seeds
from .verdicts import Verdict, outcome

HOLDS = "holds in both spaces"
PURPOSE = ("a robustness check of the primary verdicts in a second, independent feature space; the decision stays "
           "the first space's")


@dataclass(frozen=True)
class SecondSpace:
    """The primary family re-decided in the second space: its design (Δ carried over by the control's distance
    from its floor), every verdict there, and each first-space verdict's mark, in the family's order."""

    extractor: str
    design: Design
    floors: tuple[float, float]  # the real-vs-real FID floor of the first space and of the second
    excess: tuple[float, float]  # the control's mean FID above each floor at the first look's seeds
    verdicts: list[Verdict]
    marks: list[str]

    @property
    def held(self) -> int:
        return sum(m == HOLDS for m in self.marks)


def mark(first: Verdict, second: Verdict, design: Design) -> str:
    """HOLDS when both spaces reach the same verdict (the same winner, for "better"), else what the second says."""
    if (first.verdict, first.winner) == (second.verdict, second.winner):
        return HOLDS
    return f"differs in the second space: {outcome(second, design)}"


def control_excess(table: pd.DataFrame, control: str, keys: tuple[str, str], floors: tuple[float, float],
                   seeds: Sequence[int]) -> tuple[float, float]:
    """The control's mean FID above its floor over `seeds`, in the first space (keys[0]) and in the second."""
    rows = table[table["seed"].isin(seeds)]
    return tuple(float(stats.values(rows, control, key).mean()) - floor for key, floor in zip(keys, floors))


def carried_margin(margin: float, excess: tuple[float, float]) -> float | None:
    """Δ in the second space's units, to 3 significant figures: the same fraction of the control's distance from
    its floor as Δ is in the first space; None when the control is not above its floor in both."""
    if not all(x > 0 for x in excess):  # NaN (no seeds) is not above either
        return None
    return float(f"{margin * excess[1] / excess[0]:.3g}")


def second_space(table: pd.DataFrame, pairs: Sequence[tuple[str, str]], design: Design, first: list[Verdict],
                 order: Sequence[int], reference: dict | None) -> SecondSpace | None:
    """The family re-decided on design.primary's second-space key; None when there is no comparison, the runs were
    not scored there (evaluate.second_extractor off), the primary has no second-space counterpart, reference.json
    has no floor, or the control is not above its floor in both spaces (no margin to carry over)."""
    key = in_second_space(design.primary)
    if not pairs or key is None or key not in table or table[key].isna().all() or not reference or \
            "second" not in reference:  # no pairs: a study of the control alone
        return None
    control = pairs[0][1]
    seeds = usable_seeds(table, order)[: design.looks[0]] if design.looks else sorted(set(table["seed"]))
    floors = (reference["fid_half_vs_half"], reference["second"]["fid_half_vs_half"])
    excess = control_excess(table, control, (design.primary, key), floors, seeds)
    margin = carried_margin(design.margin, excess)
    if margin is None:
        return None
    d2 = replace(design, primary=key, label=METRICS[key].label, margin=margin)
    d2, verdicts, _ = sequential.primary_family(table, pairs, d2, order)
    return SecondSpace(reference["second"]["extractor"], d2, floors, excess, verdicts,
                       [mark(a, b, d2) for a, b in zip(first, verdicts)])


def _control_lift(table: pd.DataFrame, control: str, key: str, floor: float) -> str:
    values = stats.values(table, control, key)
    return stats.fmt_num(float(values.mean()) / floor, 3) if len(values) and floor > 0 else "–"


def section(s: SecondSpace | None, first: list[Verdict], design: Design, table: pd.DataFrame,
            control: str) -> list[str]:
    """The report's section on the second space: what it is, the margin carried over, how many verdicts held, the
    control's distance from each floor, and a table of both spaces' verdicts."""
    if s is None:
        return []
    d2, (f1, f2), (e1, e2) = s.design, s.floors, s.excess
    decided = sum(m == HOLDS and v.verdict in DECIDED for v, m in zip(first, s.marks))
    lines = ["## The verdicts in a second feature space (a robustness check)", "",
             f"Every primary comparison re-decided on {d2.label} ({s.extractor}: a classifier of another family, "
             f"trained apart from the first; docs/measurement.md), with the same tests, looks and alpha, and the "
             f"margin carried over as the same fraction of the control's ({control}) mean FID above the "
             f"real-vs-real floor at the first look's seeds: ±{design.margin:g} × {e2:.3g} / {e1:.3g} = "
             f"±{d2.margin:g}. The decision stays the first space's; this says whether it survives a change of "
             f"feature space. **{s.held} of {len(s.marks)} verdicts hold in both spaces** ({decided} of them decided "
             f"in both, the rest undecided in both). The control sits "
             f"{_control_lift(table, control, design.primary, f1)}x its floor ({f1:.3g}) in the first space and "
             f"{_control_lift(table, control, d2.primary, f2)}x its floor ({f2:.3g}) in the second.", "",
             "| comparison | first space | second space | diff there [interval] | p there | mark |",
             "|---|---|---|---|---|---|"]
    for v, w, m in zip(first, s.verdicts, s.marks):
        p = "–" if math.isnan(w.p) else stats.fmt_p(w.p, d2.level)
        effect = "–" if math.isnan(w.diff) else stats.fmt_effect(w.diff, w.ci_low, w.ci_high)
        lines.append(f"| {w.variant} vs {w.other} | {outcome(v, design)} | {outcome(w, d2)} | {effect} | {p} | {m} |")
    return lines + [""]


def verdict_entry(s: SecondSpace | None, i: int) -> dict[str, Any]:
    """ablation.json's `second_space` entry of the i-th verdict: its outcome there, the numbers, the mark."""
    if s is None:
        return {}
    w = s.verdicts[i]
    entry = {"outcome": outcome(w, s.design), "verdict": w.verdict, "winner": w.winner, "diff": w.diff,
             "ci_low": w.ci_low, "ci_high": w.ci_high, "p": w.p, "mark": s.marks[i]}
    return {"second_space": stats.json_ready(entry, digits=6)}


def summary(s: SecondSpace | None) -> dict[str, Any]:
    """ablation.json's top-level `second_space`: what it is for, its design, and how many verdicts held."""
    if s is None:
        return {}
    d = s.design
    return {"second_space": stats.json_ready({
        "purpose": PURPOSE, "extractor": s.extractor, "primary": d.primary, "margin": d.margin,
        "floors": {"first": s.floors[0], "second": s.floors[1]},
        "control_above_floor": {"first": s.excess[0], "second": s.excess[1]}, "comparisons": d.m, "level": d.level,
        "held": s.held, "of": len(s.marks)}, digits=6)}
