"""A sequential design's verdicts (`ablation.looks`): decide at the first look, and only the comparisons still open
get more seeds.

Look k uses the first looks[k] seeds of the seed order (`ablation.seeds` as listed, not sorted) and tests every
comparison still open at the one nominal level design.py calibrates for the looks, so that all looks together
spend each comparison's alpha/m. A "better" or an "equivalent" decides a comparison at that look, and it is not
tested again; neither leaves it "open" until the last declared look, where it is "inconclusive". Seeds beyond the
last look reached but short of the next are not used. The verdicts depend only on the table and the seed order,
not on how or when the runs were made, and need no stored state: every report recomputes every look.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, replace
from typing import Any, Sequence

import pandas as pd

from . import stats, verdicts
from .design import Design, next_look
from .verdicts import Verdict, testable, verdict_of

DECIDED = ("better", "equivalent")
BOUNDARY = "Pocock-type: one nominal level at every look, calibrated for the paired t"


@dataclass(frozen=True)
class Look:
    """One look reached: its seeds and levels, and the comparisons ("<a>_vs_<b>") it decided, left open for the next
    look, or left inconclusive (the last declared look)."""

    n: int  # seeds per variant
    seeds: tuple[int, ...]
    level: float  # two-sided nominal level of "better"
    tost_level: float  # one-sided nominal level of each of TOST's tests
    decided: tuple[str, ...]
    open: tuple[str, ...]
    inconclusive: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return stats.json_ready(asdict(self), digits=6)


def name(v: Verdict) -> str:
    """The comparison's key in ablation.json."""
    return f"{v.variant}_vs_{v.other}"


def usable_seeds(table: pd.DataFrame, order: Sequence[int]) -> list[int]:
    """The longest start of `order` whose seeds all have results: the seeds the looks may use, in that order."""
    have = set(table["seed"])
    return list(itertools.takewhile(lambda s: s in have, order))


def primary_family(table: pd.DataFrame, pairs: Sequence[tuple[str, str]], design: Design, order: Sequence[int],
                   fid_inf: str | None = None) -> tuple[Design, list[Verdict], list[Look] | None]:
    """Every look the seeds reach, in turn: (the design with its m, each pair's verdict, the looks reached).
    m counts the pairs testable at the first look (all of them before it), the same m at every look. A fixed
    design (design.looks None) has one look at every seed run: verdicts.primary_family, and None for the looks."""
    if design.looks is None:
        return (*verdicts.primary_family(table, pairs, design, fid_inf), None)
    seeds = usable_seeds(table, order)
    rows = table[table["seed"].isin(seeds)]
    reached = [n for n in design.looks if n <= len(seeds)]
    first = rows[rows["seed"].isin(seeds[: design.looks[0]])]
    design = replace(design, m=max(testable(first, pairs, design.primary) if reached else len(pairs), 1))
    latest = {p: verdict_of(rows, *p, design, fid_inf, look=0) for p in pairs} if not reached else {}
    looks = []
    for k, n in enumerate(reached, start=1):
        at = rows[rows["seed"].isin(seeds[:n])]
        tested = [p for p in pairs if p not in latest or latest[p].verdict not in DECIDED]
        latest.update({p: verdict_of(at, *p, design, fid_inf, look=k) for p in tested})
        done = [name(latest[p]) for p in tested if latest[p].verdict in DECIDED]
        left = [name(latest[p]) for p in tested if latest[p].verdict not in DECIDED]
        last = k == len(design.looks)
        looks.append(Look(n, tuple(map(int, seeds[:n])), design.level, design.tost_level, tuple(done),
                          () if last else tuple(left), tuple(left) if last else ()))
    return design, [latest[p] for p in pairs], looks


def design_json(design: Design) -> dict[str, Any]:
    """What ablation.json's "design" adds for a sequential design."""
    return dict(correction="Bonferroni over the comparisons, a Pocock-type boundary over the looks",
                looks=list(design.looks), boundary=dict(kind=BOUNDARY, better=round(design.level, 6),
                                                        equivalent=round(design.tost_level, 6),
                                                        per_comparison_alpha=round(design.share, 6)))


def design_lines(d: Design, control: str, looks: list[Look], family: list[Verdict], seeds_run: list[int],
                 seed_sequence: Sequence[int]) -> list[str]:
    """The report's design section for a sequential design, after its primary endpoint and margin: the family, the
    looks and their boundary, what each look reached decided, and the seeds the next look needs."""
    level, tost, share = f"{d.level:.2g}", f"{d.tost_level:.2g}", f"{d.share:.2g}"
    looks_text = f"{', '.join(map(str, d.looks[:-1]))} and {d.looks[-1]}" if len(d.looks) > 1 else str(d.looks[0])
    return [f"- Family-wise alpha = {d.alpha:g} over the m = {d.m} comparisons below (each variant vs the control, "
            f"{control}, and each later variant vs each earlier one) and over all looks: each comparison may spend "
            f"alpha/m = {share} (Bonferroni) over all its looks together.",
            f"- Sequential design (`ablation.looks`): looks at {looks_text} seeds per variant, each on the first "
            f"seeds of `ablation.seeds` as listed. Boundary: every look tests each comparison still open at one "
            f"nominal level, {level} two-sided for \"better\" and {tost} for each of TOST's one-sided tests, "
            f"calibrated for the paired t at these looks (Pocock-type) so that a comparison's chance of a false "
            f"\"better\", or of a false \"equivalent\", at any look is alpha/m = {share}.",
            f"- Seeds run: {', '.join(map(str, seeds_run))} ({len(seeds_run)} per variant).",
            *_look_lines(d, looks, family, seeds_run, seed_sequence), "",
            f"Difference = first − second. \"A better\": at a look, its {stats.fmt_pct(1 - d.level)} repeated "
            f"confidence interval excludes 0. \"Equivalent within ±Δ\": TOST at {tost} per side, its "
            f"{stats.fmt_pct(1 - 2 * d.tost_level)} interval inside ±Δ. Neither: \"open\" until the next look, "
            f"\"inconclusive\" at the last, with the seeds a new fixed-design study would need for 80% power to "
            f"find a true difference of Δ. The primary family's error rate is controlled over all looks: with "
            f"probability at least {1 - d.alpha:.0%} every verdict below is right (tests/reporting/test_verdicts.py "
            f"checks it by simulation). Seeds added by hand until something passes would not keep it."]


def _look_lines(d: Design, looks: list[Look], family: list[Verdict], seeds_run: list[int],
                seed_sequence: Sequence[int]) -> list[str]:
    """One line per look reached, then what the next look needs, or why seeds run are not used."""
    said = {name(v): f"{v.variant} vs {v.other} ({v.verdict if v.verdict != 'better' else v.winner + ' better'})"
            for v in family}
    lines = []
    for k, look in enumerate(looks, start=1):
        parts = [f"decided {', '.join(said[c] for c in look.decided)}" if look.decided else "decided none"]
        parts += [f"open: {', '.join(c.replace('_vs_', ' vs ') for c in look.open)}"] if look.open else []
        parts += [f"inconclusive: {', '.join(c.replace('_vs_', ' vs ') for c in look.inconclusive)}"
                  ] if look.inconclusive else []
        lines.append(f"- Look {k} of {len(d.looks)}, {look.n} seeds ({_span(look.seeds)}): {'; '.join(parts)}.")
    used = looks[-1].n if looks else 0
    following = next_look(d.looks, used)
    if not looks:
        lines.append("- No look reached yet: every comparison is open.")
    if following is not None and any(v.verdict == "open" for v in family):
        needed = [s for s in seed_sequence[:following] if s not in seeds_run]
        lines.append(f"- Next look at {following} seeds per variant: the open comparisons are tested there once "
                     f"seeds {_span(needed)} of `ablation.seed_sequence` have run too (`ablation.seeds` = its first "
                     f"{following}).")
    unused = [s for s in seeds_run if s not in (looks[-1].seeds if looks else ())]
    if unused:
        why = f"short of the next look's {following}" if following else "beyond the last look"
        lines.append(f"- Seeds {_span(unused)} are run but no verdict uses them: {why} (the exploratory and "
                     f"per-variant tables below do).")
    return lines


def _span(seeds: Sequence[int]) -> str:
    """'10–14' for a run of consecutive seeds, else the list."""
    seeds = list(seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}–{seeds[-1]}"
    return ", ".join(map(str, seeds))
