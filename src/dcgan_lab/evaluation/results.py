"""The shape of the evaluate stage's results, shared by evaluate (eval.csv) and report (its input).

`metrics/eval.json` holds {variant: {"seed<k>": {metric: value, ...}}}; the table form has one row
per (variant, seed) with the scalar entries as columns. An entry only some runs have (conditional_accuracy:
conditional generators only) is an empty cell in the others' rows; lists (the class histogram, the FID of
each class) stay in eval.json.

Each run's mode-collapse flags (collapse.py) sit under `collapse`, `best_collapse` and `ema_collapse`: null, or
why that generator was flagged.
"""

from __future__ import annotations

import json

import pandas as pd

from ..core import paths
from ..core.files import atomic_write_text
from ..core.metrics import BEST, EMA

# The generators evaluate scores per run, as the alarm names them, with the prefix of their keys in eval.json.
GENERATORS = {"last": "", "best": BEST, "EMA": EMA}


def results_table(results: dict[str, dict[str, dict]]) -> pd.DataFrame:
    """{variant: {"seed<k>": {metric: value}}} -> one row per (variant, seed). `seed` is the training seed
    (what pairs runs across variants); each result's own `seed`, the noise seed of its generated samples,
    becomes `sample_seed`."""
    rows = []
    for variant, by_seed in results.items():
        for seed_key, r in by_seed.items():
            scalars = {("sample_seed" if k == "seed" else k): v for k, v in r.items()
                       if not isinstance(v, (list, dict))}
            rows.append({"variant": variant, "seed": int(seed_key.removeprefix("seed")), **scalars})
    return pd.DataFrame(rows)


def collapse_flags(result: dict) -> list[tuple[str, str]]:
    """(generator, reason) for each generator of one run that the mode-collapse alarm flagged, in GENERATORS' order."""
    return [(generator, result[f"{prefix}collapse"]) for generator, prefix in GENERATORS.items()
            if result.get(f"{prefix}collapse")]


def write_results(results: dict[str, dict[str, dict]], out: paths.EvalPaths) -> None:
    """metrics/eval.json (every run's scores, {variant: {"seed<k>": scores}}) and eval.csv (one row per run): the
    report's aggregate of the per-run files, so `dvc exp show` and `dvc metrics diff` see every run in one place."""
    atomic_write_text(out.results, json.dumps(results, indent=2) + "\n")
    atomic_write_text(out.table, results_table(results).to_csv(index=False, float_format="%.6g"))
