"""What the report stage reads: every run's scores (the evaluate@ stages' files), the reference, the losses, each
read whole before anything is written; a missing or unreadable one is one line naming the stage that makes it."""

from __future__ import annotations

import json
from pathlib import Path

from ..core import paths
from ..core.errors import DataError, reason


def protocol_of(results: dict) -> dict:
    """How the scores were measured, from the first result (every result of a run shares it)."""
    first = next(iter(next(iter(results.values())).values()))
    protocol = {k: first[k] for k in ("extractor", "fid_features", "n_samples", "n_real", "real_split", "seed",
                                      "kid_subset_size")}
    protocol["sample seed"] = protocol.pop("seed")
    if "extractor_test_accuracy" in first:
        protocol["extractor test accuracy"] = first["extractor_test_accuracy"]
    return protocol


def read_input(path: Path, read, stage: str):
    """An input of the report, read by `read`; missing or unreadable is one line saying which stage makes it."""
    try:
        return read(path)
    except FileNotFoundError:
        raise DataError(f"{path}: not found; run `dvc repro {stage}` first") from None
    except (OSError, ValueError, KeyError) as exc:  # pandas' and json's parse errors are ValueErrors
        raise DataError(f"{path}: unreadable ({reason(exc)}); rerun `dvc repro {stage}`") from exc


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


NEWEST_KEYS = {"intra_fid": "per-class FID", "collapse": "mode-collapse flag"}  # what an older evaluate lacks


def read_results(eval_paths: paths.EvalPaths, variants: list[str], seeds: list[int]) -> dict:
    """Every run's scores, {variant: {"seed<k>": scores}}, from the evaluate@<variant>-<seed> stages' files, each
    with its per-class FIDs and collapse flags: an older evaluate's is refused."""
    results: dict[str, dict[str, dict]] = {}
    for v in variants:
        for s in seeds:
            path, stage = eval_paths.run(v, s), f"evaluate@{v}-{s}"
            r = read_input(path, read_json, stage)
            for key, what in NEWEST_KEYS.items():
                if key not in r:
                    raise DataError(f"{path}: written by an older evaluate (no {what}, {key}); "
                                    f"rerun `dvc repro {stage}`")
            results.setdefault(v, {})[f"seed{s}"] = r
    return results
