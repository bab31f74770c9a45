"""The mode-collapse alarm: when a scored generator is flagged, and the words that say why.

A generator is flagged when any class's diversity ratio (per_class.diversity_ratio) is below
`evaluate.collapse_diversity`, or its overall recall below `evaluate.collapse_recall`. FID alone does not see it:
a conditional G that ignores its noise, one image per class, keeps a moderate FID in the classifier's feature
space. The reason is written once, here, and every place that shows the flag prints it as it is: evaluate's
`warning:` line, eval.json's `collapse` (and `best_collapse`, `ema_collapse`), the MLflow tag `collapse`, the report.
"""

from __future__ import annotations

from .results import collapse_flags


def collapse_reason(result: dict, min_diversity: float, min_recall: float) -> str | None:
    """Why one generator's scores (evaluate_variant's result) look collapsed, or None: the class with the lowest
    diversity ratio under `min_diversity` (and how many more are under it), and the recall under `min_recall`.
    A class without a ratio (too few samples) raises nothing here; class coverage sees missing classes."""
    reasons = []
    low = sorted((v, k) for k, v in enumerate(result.get("intra_diversity", [])) if v is not None and v < min_diversity)
    if low:
        (value, k), more = low[0], len(low) - 1
        reasons.append(f"class {k} diversity ratio {value:.3g} < {min_diversity:g}"
                       + (f" (and {more} more class{'es' if more > 1 else ''})" if more else ""))
    recall = result.get("recall")
    if recall is not None and recall < min_recall:
        reasons.append(f"recall {recall:.3g} < {min_recall:g}")
    return "; ".join(reasons) or None


def collapse_tag(result: dict) -> str:
    """The MLflow tag `collapse` of one run: each flagged generator with its reason, or "none"."""
    return "; ".join(f"{generator}: {reason}" for generator, reason in collapse_flags(result)) or "none"


def collapse_warnings(results: dict[str, dict[str, dict]]) -> list[str]:
    """One `warning:` line per flagged generator of eval.json's results, naming the run and the generator."""
    return [f"warning: mode collapse in {name} seed {seed_key.removeprefix('seed')}, {generator} generator: {reason}"
            for name, by_seed in results.items() for seed_key, r in by_seed.items()
            for generator, reason in collapse_flags(r)]
