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


def _worst(check: dict) -> str:
    """The failed disturbance whose Spearman rho is farthest from a steady rise or fall, with its rho."""
    rhos = {n: check["spearman"].get(n) for n in check["failed"]}
    name = min(rhos, key=lambda n: -2 if rhos[n] is None else abs(rhos[n]))
    return f"{name} (ρ {'undefined' if rhos[name] is None else f'{rhos[name]:.2g}'})"


def extractor_lines(validation: dict | None) -> tuple[str | None, list[str]]:
    """What metrics/extractor.json (the validate_extractor stage) says of each feature space: a flag for the
    report's opening if any check failed (None if every one passed), and one line each for "How it was measured":
    whether FID rises with every disturbance (Spearman ρ = 1 over its levels; the worst one if not), whether recall
    falls where modes go missing, batch-size invariance, and the sensitivity. Nothing is recomputed here."""
    if validation is None:
        return None, []
    lines, failed = [], []
    for name, v in validation["extractors"].items():
        c = v["checks"]
        fid, recall, batch = c["fid_rises"], c["recall_falls"], c["batch_size_invariance"]
        n = len(fid["spearman"])
        parts = [f"FID rises with the level under all {n} disturbances (Spearman ρ = 1 each)" if fid["ok"] else
                 f"FID does not rise steadily under {len(fid['failed'])} of {n} disturbances, the worst "
                 f"{_worst(fid)}",
                 "recall falls as modes go missing (mode dropping, mode collapse)" if recall["ok"] else
                 f"recall does not fall as modes go missing under {', '.join(recall['failed'])}",
                 (f"features equal at batch sizes {batch['batch_sizes'][0]} and {batch['batch_sizes'][1]} (max |diff| "
                  f"{batch['max_abs_diff']:.2g})" if batch["ok"] else "features change with the batch size "
                  f"(max |diff| {batch['max_abs_diff']:.2g} > {batch['tolerance']:.2g})"),
                 f"the mildest level of a disturbance lands a median {v['sensitivity']:.3g}x above its real-vs-real "
                 f"floor (FID {v['floor_fid']:.3g})" if v["sensitivity"] is not None else "sensitivity undefined"]
        lines.append(f"Feature space `{name}` checked (validate_extractor, metrics/extractor.json): "
                     + "; ".join(parts) + ".")
        if not v["ok"]:
            failed.append(f"`{name}` failed {', '.join(v['failed_checks'])}")
    flag = (f"**Feature-space warning:** {'; '.join(failed)} (metrics/extractor.json): its FID may not mean what it "
            "should; the numbers are reported, read them with care." if failed else None)
    return flag, lines
