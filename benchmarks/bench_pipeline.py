"""bench_pipeline: what `make repro` costs when nothing changed, the no-op `dvc status` and `dvc repro`.

Both run on the real repository with the venv's bin/ first on PATH, as `make repro` does. `dvc repro` is
timed only when `dvc status` says everything is up to date, so that it really is a no-op (otherwise it
would retrain; the row says so instead).

    python benchmarks/bench_pipeline.py [--dvc-repeats 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT, Row, report, standalone, summary

BIN = Path(sys.executable).parent


def dvc(command: str) -> tuple[float, subprocess.CompletedProcess]:
    """`dvc <command>` in the repository: its wall time and result."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    started = time.perf_counter()
    out = subprocess.run([str(BIN / "dvc"), command], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=900)
    return time.perf_counter() - started, out


def bench(repeats: int, verbose: bool = True) -> list[Row]:
    status = [dvc("status") for _ in range(repeats)]
    seconds = summary([s for s, _ in status])
    last = status[-1][1]
    said = [" ".join(line.split()) for line in (last.stdout + last.stderr).splitlines() if line.strip()][:3]
    up_to_date = last.returncode == 0 and any("up to date" in line for line in said)
    if verbose:
        print(f"  dvc status: {[round(s, 2) for s, _ in status]} s; "
              f"{'up to date' if up_to_date else 'changes: ' + ' | '.join(said)}", flush=True)
    rows = [Row("dvc status, up-to-date check (s)", "s", seconds["median"] if last.returncode == 0 else None,
                note="" if up_to_date else "pipeline not up to date: " + " | ".join(said),
                detail={"ours": seconds, "up_to_date": up_to_date})]
    if not up_to_date:
        rows.append(Row("dvc repro, no-op (s)", "s", None, note="skipped: `dvc status` reports changes, so "
                        "`dvc repro` would run stages, not no-op; run `make repro` first"))
        return rows
    repro = [dvc("repro") for _ in range(repeats)]
    seconds = summary([s for s, _ in repro])
    failed = next((out for _, out in repro if out.returncode != 0), None)
    if verbose:
        print(f"  dvc repro (no-op): {[round(s, 2) for s, _ in repro]} s", flush=True)
    rows.append(Row("dvc repro, no-op (s)", "s", None if failed else seconds["median"],
                    note="failed: " + failed.stderr.strip()[-300:] if failed else
                    "what `make repro` costs when nothing changed (after `make setup`'s stamp check)",
                    detail={"ours": seconds}))
    return rows


def add_arguments(parser: argparse.ArgumentParser, quick: bool) -> None:
    repeats = int(os.environ.get("BENCH_DVC_REPEATS", 1 if quick else 2))
    parser.add_argument("--dvc-repeats", type=int, default=repeats, help="runs of each command (default 2; quick 1)")


def main() -> None:
    args, _, device = standalone(__doc__, add_arguments)
    report(bench(args.dvc_repeats), args, device)


if __name__ == "__main__":
    main()
