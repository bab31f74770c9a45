"""bench_startup: each stage's start-up, from its process start to its first unit of work.

Every stage of the pipeline runs in a fresh process: DVC starts `python stages/<stage>.py ...`, which imports torch
and the package, reads params.yaml, opens its inputs (and, for a train stage, its MLflow run) before it does any
work. This measures that time, stage by stage, with the command dvc.lock records for it (for `train@` and
`evaluate@`: the study's first variant and seed), run by `startup_probe.py`, which exits where the start-up ends:

| stage | start-up ends at |
| --- | --- |
| train_classifier, train_second_classifier, train@ | the first training step (the progress line is created) |
| evaluate@ | the first generator's samples (the same) |
| validate_extractor | the first level scored (the same) |
| prepare, reference, report | main() entered: imports and params (their work has no progress line) |

So no stage writes its outputs, and the repository is left as it was; the MLflow run a train stage opens goes to a
temporary store. Each stage runs once untimed (the file cache warm, as in `dvc repro`), then `--startup-repeats`
times; the row is the median wall time from starting the process to the mark, with the `ready` mark (imports and
params) beside it. The target, ≤ 5 s per stage, is the performance issue's. Natively, or with --startup-avx2
restricted to AVX2 (isa.py's variables on the child processes, after the probe shows they take effect; `make bench`
runs both on a CPU).

    python benchmarks/bench_startup.py [--startup-repeats 3] [--startup-stages train,evaluate] [--startup-avx2]
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml

from benchmarks.common import ROOT, Row, comma_list, report, standalone, summary
from benchmarks.isa import AVX2_ENV, LABEL, probe, restricted

PROBE = Path(__file__).resolve().parent / "startup_probe.py"
TARGET_SECONDS = 5.0
# The stages in pipeline order, and where each one's start-up ends (startup_probe's marks).
UNTIL = {"prepare": "ready", "train_classifier": "progress", "train_second_classifier": "progress",
         "validate_extractor": "progress", "reference": "ready", "train": "progress", "evaluate": "progress",
         "report": "ready"}
WHAT = {"ready": "imports and params", "progress": "to its first unit of work"}


def stage_commands(root: Path, params: dict) -> dict[str, tuple[str, list[str]]]:
    """{stage: (its dvc.lock name, its argv after `python`)} for every stage of UNTIL that dvc.lock records;
    `train` and `evaluate` as the study's first variant and seed."""
    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    first = f"{params['ablation']['variants'][0]}-{params['ablation']['seeds'][0]}"
    out = {}
    for stage in UNTIL:
        name = f"{stage}@{first}" if stage in ("train", "evaluate") else stage
        if name not in lock:
            continue
        argv = shlex.split(lock[name]["cmd"])
        argv = argv[1:] if argv[0] == "exec" else argv
        if Path(argv[0]).name.startswith("python"):  # train.launcher torchrun: not a python command; not measured
            out[stage] = (name, argv[1:])
    return out


def run_once(argv: list[str], until: str, env: dict[str, str], root: Path) -> dict[str, float]:
    """One probed run of a stage: wall seconds from starting the process to each mark it printed; raises when the
    stage failed or ended before the mark."""
    with tempfile.TemporaryFile("w+") as stderr:  # a file, not a pipe: a chatty stage cannot fill it and stall
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, str(PROBE), "--until", until, *argv], cwd=root, env=env,
                                stdout=subprocess.PIPE, stderr=stderr, text=True)
        seen: dict[str, float] = {}
        for line in proc.stdout:
            if line.startswith("STARTUP "):
                name = line.split()[1]
                seen[name] = time.perf_counter() - started
                if name in (until, "end"):
                    break
        proc.communicate(timeout=600)
        stderr.seek(0)
        err = stderr.read()
    if until not in seen:
        tail = " | ".join(err.strip().splitlines()[-3:])
        raise RuntimeError(f"{' '.join(argv[:1])} exited ({proc.returncode}) before its start-up ended: {tail}")
    return seen


def stage_rows(commands: dict, repeats: int, env: dict[str, str], root: Path, suffix: str = "",
               verbose: bool = True) -> list[Row]:
    """A row per stage: the median wall seconds to the stage's mark over `repeats` runs, after one untimed run."""
    rows = []
    for stage, (name, argv) in commands.items():
        until = UNTIL[stage]
        try:
            run_once(argv, until, env, root)  # warms the file cache
            runs = [run_once(argv, until, env, root) for _ in range(repeats)]
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            rows.append(Row(f"start-up: {name}{suffix}", "s", None, note=f"failed: {exc}"))
            continue
        total, ready = summary([r[until] for r in runs]), summary([r["ready"] for r in runs])
        if verbose:
            ready_part = "" if until == "ready" else f", imports and params {[round(r['ready'], 2) for r in runs]} s"
            print(f"  {name}{suffix}: {[round(r[until], 2) for r in runs]} s ({WHAT[until]}){ready_part}", flush=True)
        note = WHAT[until] if until == "ready" else f"{WHAT[until]}; imports and params {ready['median']:.2f} s of it"
        rows.append(Row(f"start-up: {name}{suffix}", "s", total["median"], target=f"<= {TARGET_SECONDS:g} s",
                        met=total["median"] <= TARGET_SECONDS, note=note,
                        detail={"ours": total, "ready": ready, "until": until, "argv": argv}))
    return rows


def bench(params_raw: dict, repeats: int, stages: list[str] | None = None, avx2: bool = False,
          root: Path = ROOT, verbose: bool = True) -> list[Row]:
    """Start-up rows for every stage dvc.lock records (or `stages`), natively or, with `avx2`, restricted to AVX2
    (after a row that says whether the restriction took effect); none when the pipeline has not run yet."""
    if not (root / "dvc.lock").exists():
        return [Row("start-up", "s", None, note="skipped: no dvc.lock; run `make repro` first")]
    commands = stage_commands(root, params_raw)
    if stages:
        commands = {k: v for k, v in commands.items() if k in stages}
    suffix, extra, rows = "", {}, []
    if avx2:
        found = probe(AVX2_ENV)
        rows.append(Row(f"{LABEL}: the restriction took effect (start-up)", "", "yes" if restricted(found) else "no",
                        met=restricted(found), detail=found))
        if not restricted(found):
            return rows
        suffix, extra = f" [{LABEL}]", AVX2_ENV
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        env = {**os.environ, **extra, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db", "PYTHONUNBUFFERED": "1"}
        return rows + stage_rows(commands, repeats, env, root, suffix, verbose)


def add_arguments(parser: argparse.ArgumentParser, quick: bool) -> None:
    repeats = int(os.environ.get("BENCH_STARTUP_REPEATS", 1 if quick else 3))
    parser.add_argument("--startup-repeats", type=int, default=repeats,
                        help="timed runs of each stage, after one untimed (default 3; quick 1)")
    parser.add_argument("--startup-stages", type=comma_list(tuple(UNTIL)), default=os.environ.get("BENCH_STARTUP_STAGES", ""),
                        help=f"comma-separated subset of {','.join(UNTIL)} (default: all)")
    parser.add_argument("--startup-avx2", action="store_true",
                        help="restricted to AVX2 (isa.py's variables) instead of natively")


def main() -> None:
    args, _, device = standalone(__doc__, add_arguments)
    raw = yaml.safe_load(Path(args.params).read_text())
    report(bench(raw, args.startup_repeats, args.startup_stages or None, avx2=args.startup_avx2), args, device)


if __name__ == "__main__":
    main()
