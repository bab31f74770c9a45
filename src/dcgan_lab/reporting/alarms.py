"""The report's mode-collapse line: which scored generators evaluate flagged, with its reasons as eval.json
stores them (evaluation/collapse.py words them), or that none was. Nothing is recomputed here; an eval.json
without the flags is refused before this (inputs.read_results)."""

from __future__ import annotations

from ..evaluation.results import GENERATORS, collapse_flags


def _rule(thresholds: dict) -> str:
    parts = [f"a class's diversity ratio below {thresholds['diversity']:g}" if thresholds["diversity"] else "",
             f"recall below {thresholds['recall']:g}" if thresholds["recall"] else ""]
    return " or ".join(p for p in parts if p) or "off"


def collapse_line(results: dict, variants: list[str]) -> str:
    """One line for the report's opening: the flagged generators of `variants` (run, which generator, why), or
    how many were checked and none flagged."""
    runs = [(v, s.removeprefix("seed"), r) for v in variants for s, r in results[v].items()]
    checked = sum(f"{prefix}collapse" in r for _, _, r in runs for prefix in GENERATORS.values())
    rule = _rule(next(r["collapse_thresholds"] for _, _, r in runs if "collapse_thresholds" in r))
    flagged = [f"{v} seed {s} {generator} ({reason})" for v, s, r in runs for generator, reason in collapse_flags(r)]
    if not flagged:
        return f"**Mode collapse:** none of the {checked} scored generators flagged (alarm: {rule})."
    return (f"**Mode collapse flagged** in {len(flagged)} of {checked} scored generators (alarm: {rule}): "
            + ", ".join(flagged) + ".")
