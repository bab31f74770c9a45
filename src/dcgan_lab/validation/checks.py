"""The verdicts of the extractor's validation, pure functions of the numbers it measured (tests give them any
numbers): does a score move steadily with the level, are two extractions of the same images equal, how far above
the floor the mildest disturbances lift FID, and what failed, in the words of the warnings and the summary line."""

from __future__ import annotations

import math
import statistics
from typing import Sequence

import torch
from scipy import stats

FID_RISES, RECALL_FALLS, BATCH_SIZE = "fid_rises", "recall_falls", "batch_size_invariance"
RECALL_DISTURBANCES = ("mode_dropping", "mode_collapse")  # where modes go missing, so recall must fall
RECALL_BOUND = 0.0  # recall cannot fall below it: see monotone


def spearman(values: Sequence[float]) -> float | None:
    """Spearman's rho of `values` against their level index (0, 1, ...), to 9 decimals (1, not 0.9999999999999999);
    None where it is undefined (fewer than two levels, or one value at every level)."""
    if len(values) < 2 or len(set(values)) < 2:
        return None
    return round(float(stats.spearmanr(range(len(values)), values).statistic), 9)


def monotone(values: Sequence[float], direction: int, bound: float | None = None) -> bool:
    """Whether `values` move steadily with the level, up (`direction` +1) or down (-1): Spearman's rho over the
    levels is exactly `direction`, i.e. each level's value is above (below) the one before.

    With `bound`, a value the score cannot pass, a run of ties at the bound from some level on counts as moving:
    recall is 0 once every generated image has 3 copies of itself (mode collapse to n/10 distinct images already),
    because torch-fidelity's k = 3 neighbourhood of each is then a ball of radius 0; the levels before must still
    fall strictly, and the first of them must not be at the bound."""
    values = list(values)
    if bound is not None and bound in values:
        first = values.index(bound)
        if any(v != bound for v in values[first:]):
            return False
        values = values[: first + 1]
    rho = spearman(values)
    return rho is not None and math.isclose(rho, direction, abs_tol=1e-9)


def over_floor(fid: Sequence[float]) -> list[float | None]:
    """Each level's FID over level 0's, the floor: how many floors above; null where the floor is 0."""
    return [f / fid[0] if fid[0] > 0 else None for f in fid]


def sensitivity(ratios: dict[str, Sequence[float | None]]) -> float | None:
    """One number per feature space: the median over disturbances of FID at the mildest nonzero level over the
    floor (`ratios`: each disturbance's over_floor). 1 would be blind to a mild disturbance."""
    mild = [r[1] for r in ratios.values() if len(r) > 1 and r[1] is not None]
    return float(statistics.median(mild)) if mild else None


def features_agree(a: torch.Tensor, b: torch.Tensor, rel_tolerance: float) -> dict:
    """Whether two extractions of the same images, (N, D) each, are equal within `rel_tolerance` of the largest
    feature (at least 1): the max |a - b|, the tolerance it is held to, and the verdict."""
    tolerance = rel_tolerance * max(1.0, float(a.abs().max()) if a.numel() else 0.0)
    if a.shape != b.shape:
        return {"ok": False, "max_abs_diff": None, "tolerance": tolerance}
    diff = float((a.double() - b.double()).abs().max()) if a.numel() else 0.0
    return {"ok": diff <= tolerance, "max_abs_diff": diff, "tolerance": tolerance}


def checks(disturbances: dict[str, dict], batch_size: dict) -> dict:
    """The checks of one feature space from its scores ({disturbance: {"fid": [...], "recall": [...], ...}}, level
    0 first) and the batch-size comparison (features_agree's, with its sizes): FID rises under every disturbance,
    recall falls where modes go missing, the features do not depend on the batch size."""
    fid = {name: monotone(d["fid"], +1) for name, d in disturbances.items()}
    recall = {name: monotone(disturbances[name]["recall"], -1, RECALL_BOUND)
              for name in RECALL_DISTURBANCES if name in disturbances}
    return {
        FID_RISES: {"ok": all(fid.values()), "failed": [n for n, ok in fid.items() if not ok],
                    "spearman": {n: spearman(d["fid"]) for n, d in disturbances.items()}},
        RECALL_FALLS: {"ok": all(recall.values()), "failed": [n for n, ok in recall.items() if not ok],
                       "spearman": {n: spearman(disturbances[n]["recall"]) for n in recall}},
        BATCH_SIZE: batch_size,
    }


def _rhos(check: dict) -> str:
    return ", ".join(f"{n} (Spearman rho {_g(check['spearman'][n])})" for n in check["failed"])


def _g(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.2g}"


def verdict(extractor: str, checked: dict) -> tuple[list[str], list[str]]:
    """The failed checks' names and one `warning: ...` line for each, naming the extractor."""
    failed = [name for name, check in checked.items() if not check["ok"]]
    lines = {
        FID_RISES: lambda c: f"FID does not rise steadily with the level under {_rhos(c)}",
        RECALL_FALLS: lambda c: f"recall does not fall as modes go missing under {_rhos(c)}",
        BATCH_SIZE: lambda c: (f"its features depend on the batch size: max |diff| {_g(c['max_abs_diff'])} between "
                               f"batch sizes {c['batch_sizes'][0]} and {c['batch_sizes'][1]} on {c['n_images']} "
                               f"images, above the tolerance {c['tolerance']:.2g}"),
    }
    return failed, [f"warning: {extractor}: {lines[name](checked[name])}; FID in this feature space may not mean "
                    f"what it should (metrics/extractor.json)" for name in failed]


def summary_line(extractor: str, result: dict, protocol: dict) -> str:
    """One extractor's line (`result`, with the JSON's `protocol`), e.g. `dcgan-lab-classifier: floor FID 0.0391
    (5000 val vs 10000 test images); FID rises in 7 of 7 disturbances; recall falls under mode dropping and
    collapse; batch-size invariant (max |diff| 1.1e-06); sensitivity 14.3x floor`"""
    c = result["checks"]
    n_fid = len(c[FID_RISES]["spearman"])
    fid = f"FID rises in {n_fid - len(c[FID_RISES]['failed'])} of {n_fid} disturbances"
    fid += f" (not under {', '.join(c[FID_RISES]['failed'])})" if c[FID_RISES]["failed"] else ""
    recall = ("recall falls under mode dropping and collapse" if c[RECALL_FALLS]["ok"]
              else f"recall does not fall under {', '.join(c[RECALL_FALLS]['failed'])}")
    b = c[BATCH_SIZE]
    batch = (f"batch-size invariant (max |diff| {_g(b['max_abs_diff'])})" if b["ok"]
             else f"NOT batch-size invariant (max |diff| {_g(b['max_abs_diff'])} > {b['tolerance']:.2g})")
    s = result["sensitivity"]
    return (f"{extractor}: floor FID {result['floor_fid']:.3g} ({result['n']} {protocol['split']} vs "
            f"{protocol['n_reference']} {protocol['reference_split']} images); {fid}; {recall}; {batch}; "
            f"sensitivity {'undefined' if s is None else f'{s:.3g}x'} floor")
