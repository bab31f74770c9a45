"""The shape of the evaluate stage's results, shared by evaluate (eval.csv) and report (its input).

`metrics/eval.json` holds {variant: {"seed<k>": {metric: value, ...}}}; the table form has one row
per (variant, seed) with the scalar entries as columns. An entry only some runs have (conditional_accuracy:
conditional generators only) is an empty cell in the others' rows; lists (the class histogram, the FID of
each class) stay in eval.json.
"""

from __future__ import annotations

import pandas as pd


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
