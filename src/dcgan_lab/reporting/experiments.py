"""An ablation grid through DVC's experiment queue, and one report across its experiments.

Every grid point is one `dvc exp run --queue -S key=value ...`; each experiment runs the whole
pipeline (every variant x every seed of `ablation.seeds`), so variants and seeds are inside each
experiment and the grid spans everything else (pixel range, loss, widths...). `dvc queue start -j N`
runs them in temp copies of the repo; all of them log into the repository's one MLflow store.
The report reads each experiment's metrics/ablation.json through `dvc.api.exp_show`.
"""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import time
from pathlib import Path

import pandas as pd

from ..core.errors import ConfigError
from ..core.metrics import METRICS, short
from ..core.progress import Progress

# The per-variant means of metrics/ablation.json collected across experiments, by their short names there.
REPORT_METRICS = tuple(short(k) for k in ("fid", "is_mean", "kid_mean", "precision", "recall", "best_fid"))
SHOWN = ("fid", "is_mean", "kid_mean", "precision", "recall")  # the table's columns


def parse_axes(specs: list[str]) -> dict[str, list[str]]:
    """['data.pixel_range=[-1,1]|[0,1]', 'train.loss=bce|hinge'] -> {key: [values]} (values stay YAML text)."""
    axes: dict[str, list[str]] = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise ConfigError(f"--grid {spec!r}: expected key=value1|value2|..., e.g. 'train.loss=bce|hinge'")
        axes[key.strip()] = [v.strip() for v in values.split("|") if v.strip()]
    return axes


def grid_points(axes: dict[str, list[str]]) -> list[dict[str, str]]:
    """The cartesian product of the axes, one {key: value} per experiment, in a stable order."""
    keys = list(axes)
    return [dict(zip(keys, values)) for values in itertools.product(*(axes[k] for k in keys))]


def queue_args(point: dict[str, str], fixed: dict[str, str]) -> list[str]:
    """`dvc exp run --queue` arguments for one grid point (plus params every point shares)."""
    sets = [a for k, v in {**fixed, **point}.items() for a in ("-S", f"{k}={v}")]
    return ["dvc", "exp", "run", "--queue", *sets]


def queue_status(cwd: Path) -> tuple[str, int]:
    """`dvc queue status` and how many experiments in it have ended (Success or Failed)."""
    status = subprocess.run(["dvc", "queue", "status"], cwd=cwd, capture_output=True, text=True, check=True).stdout
    return status, sum(line.split()[-1:] in (["Success"], ["Failed"]) for line in status.splitlines())


def run_queue(points: list[dict[str, str]], fixed: dict[str, str], jobs: int, cwd: Path,
              poll_seconds: float = 10.0) -> str:
    """Queue every point, start `jobs` workers, wait until the queue is empty (a progress bar of the
    experiments that ended); returns `dvc queue status`."""
    _, ended_before = queue_status(cwd)  # the queue remembers earlier experiments
    for point in points:
        subprocess.run(queue_args(point, fixed), cwd=cwd, check=True)
    # Workers share the cores: without a thread cap each takes all of them and oneDNN convolutions slow
    # down by orders of magnitude (benchmarks/RESULTS.md). A user's own OMP_NUM_THREADS wins.
    threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // jobs))
    subprocess.run(["dvc", "queue", "start", "-j", str(jobs)], cwd=cwd, check=True,
                   env={**os.environ, "OMP_NUM_THREADS": threads})
    progress = Progress(len(points), "dvc queue", unit="experiment")
    while True:
        status, ended = queue_status(cwd)
        if ended - ended_before > progress.n:
            progress.update(ended - ended_before - progress.n)
        if not any(word in status for word in ("Queued", "Running")):
            progress.close()
            return status
        time.sleep(poll_seconds)


def collect(rows: list[dict], keys: list[str]) -> pd.DataFrame:
    """`dvc.api.exp_show` rows -> one row per (experiment, variant) with the grid params and the
    per-variant means and 95% intervals of metrics/ablation.json. Experiments without results are left out."""
    table = []
    for row in rows:
        name = row.get("Experiment") or row.get("rev")  # the baseline and the workspace have no name
        variants = sorted({k.split(".")[0] for k in row if k.endswith(".fid_mean") and row[k] is not None})
        for variant in variants:
            entry = {"experiment": name, **{k: row.get(k) for k in keys}, "variant": variant,
                     "n_seeds": row.get(f"{variant}.n_seeds")}
            for metric in REPORT_METRICS:
                entry[f"{metric}_mean"] = row.get(f"{variant}.{metric}_mean")
                entry[f"{metric}_ci95"] = row.get(f"{variant}.{metric}_ci95")
            table.append(entry)
    return pd.DataFrame(table)


def _fmt(mean, half) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    if half is None or (isinstance(half, float) and math.isnan(half)):
        return f"{mean:.3f}"
    return f"{mean:.3f} ± {half:.3f}"


def render(table: pd.DataFrame, keys: list[str]) -> str:
    """Markdown: one line per experiment and variant, sorted by FID (mean ± 95% CI over seeds)."""
    if table.empty:
        return "No finished experiments with metrics/ablation.json.\n"
    table = table.sort_values(["fid_mean", "experiment"], na_position="last")
    heads = [f"{METRICS[k].label} {'↑' if METRICS[k].higher_is_better else '↓'}" for k in SHOWN]
    cols = ["experiment", *keys, "variant", "seeds", *heads]
    lines = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    for r in table.to_dict("records"):
        seeds = r["n_seeds"]
        seeds = "-" if seeds is None or seeds != seeds else str(int(seeds))
        cells = [str(r["experiment"]), *(str(r[k]) for k in keys), r["variant"], seeds,
                 *(_fmt(r[f"{short(m)}_mean"], r[f"{short(m)}_ci95"]) for m in SHOWN)]
        lines.append("| " + " | ".join(cells) + " |")
    return ("Ablation across DVC experiments: mean ± 95% CI over seeds per variant (metrics/ablation.json of "
            "each experiment), best FID first.\n\n" + "\n".join(lines) + "\n")
