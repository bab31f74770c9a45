"""bench_pipeline: no-op `dvc repro` time and the peak memory of the prepare and train stages.

- `dvc status` is timed on the real repository (read-only). `dvc repro` is timed only when `dvc status`
  says everything is up to date, so that it really is a no-op; otherwise it would retrain, and the row
  says so instead. Both run with the venv's bin/ first on PATH, as `make repro` does.
- Peak RSS (the child's VmHWM, polled from /proc) of `stages/prepare.py` writing to a temp dir, and of
  `stages/train.py` run in a temp copy of the repository layout (params.yaml with `train.max_steps`
  cut short, data/prepared and models/classifier linked read-only, MLflow in a temp sqlite store), so no
  DVC output of the repository is touched. Peak memory is reached early (data, models, torch-fidelity
  for the quick FID at the last step), so a short run shows it.

    python benchmarks/bench_pipeline.py [--rss-train-steps 100] [--no-dvc] [--no-rss]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml

from benchmarks.common import ROOT, Row, env_flag, render_table, summary

BIN = Path(sys.executable).parent


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def run_measured(cmd: list[str], cwd: Path, env: dict, timeout: float = 900) -> dict:
    """Run `cmd` to the end; its wall time, exit code, output tail and peak RSS (MiB).

    The peak is the child's VmHWM (/proc/<pid>/status), polled until it exits: wait4's ru_maxrss would
    include this (large) benchmark process, since Linux carries maxrss across fork and exec."""
    started = time.perf_counter()
    hwm_kib = 0
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = started + timeout
        while True:
            try:
                for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        hwm_kib = max(hwm_kib, int(line.split()[1]))
            except (OSError, ValueError):
                pass
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here; keep Popen from waiting again
        seconds = time.perf_counter() - started
        out.seek(0)
        tail = out.read().decode(errors="replace").strip().splitlines()[-5:]
    return {"seconds": seconds, "rc": proc.returncode, "tail": tail, "peak_rss_mib": hwm_kib / 1024}


def dvc_rows(repeats: int, verbose: bool = True) -> list[Row]:
    dvc = str(BIN / "dvc")
    status_runs = []
    for _ in range(repeats):
        status_runs.append(run_measured([dvc, "status"], ROOT, _env()))
    last = status_runs[-1]
    last["tail"] = [" ".join(line.split()) for line in last["tail"] if line.strip()]
    up_to_date = last["rc"] == 0 and any("up to date" in line for line in last["tail"])
    if verbose:
        print(f"  dvc status: {[round(r['seconds'], 2) for r in status_runs]} s; "
              f"{'up to date' if up_to_date else 'changes: ' + ' | '.join(last['tail'][:3])}", flush=True)
    status = summary([r["seconds"] for r in status_runs])
    rows = [Row("dvc status, up-to-date check (s)", "s", status["median"] if last["rc"] == 0 else None,
                note="" if up_to_date else "pipeline not up to date: " + " | ".join(last["tail"][:3]),
                detail={"ours": status, "up_to_date": up_to_date})]
    if not up_to_date:
        rows.append(Row("dvc repro, no-op (s)", "s", None,
                        note="skipped: `dvc status` reports changes, so `dvc repro` would run stages, not no-op; "
                             "run `make repro` first"))
        return rows
    repro_runs = [run_measured([dvc, "repro"], ROOT, _env()) for _ in range(repeats)]
    ok = all(r["rc"] == 0 for r in repro_runs)
    if verbose:
        print(f"  dvc repro (no-op): {[round(r['seconds'], 2) for r in repro_runs]} s", flush=True)
    repro = summary([r["seconds"] for r in repro_runs])
    rows.append(Row("dvc repro, no-op (s)", "s", repro["median"] if ok else None,
                    note="what `make repro` costs when nothing changed (after `make setup`'s stamp check)"
                    if ok else "failed: " + repro_runs[-1]["tail"][-1], detail={"ours": repro}))
    return rows


def rss_rows(variant: str, train_steps: int, verbose: bool = True) -> list[Row]:
    python = sys.executable
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-stages-") as tmp:
        tmp = Path(tmp)
        prep = run_measured([python, str(ROOT / "stages" / "prepare.py"), "--out", str(tmp / "prepared")], ROOT,
                            _env())
        if verbose:
            print(f"  prepare: {prep['seconds']:.1f} s, peak RSS {prep['peak_rss_mib']:.0f} MiB", flush=True)
        rows.append(Row("prepare stage, peak RSS (MiB)", "MiB", prep["peak_rss_mib"] if prep["rc"] == 0 else None,
                        note=f"wall {prep['seconds']:.1f} s" if prep["rc"] == 0 else "failed: " + prep["tail"][-1], detail={"seconds": prep["seconds"]}))

        # A temp copy of the layout the train stage expects, with a short run.
        raw = yaml.safe_load((ROOT / "params.yaml").read_text())
        raw["train"]["max_steps"] = train_steps
        (tmp / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        (tmp / "data").mkdir()
        (tmp / "data" / "prepared").symlink_to(ROOT / "data" / "prepared", target_is_directory=True)
        (tmp / "models").mkdir()
        (tmp / "models" / "classifier").symlink_to(ROOT / "models" / "classifier", target_is_directory=True)
        train = run_measured([python, str(ROOT / "stages" / "train.py"), "--variant", variant, "--seed", "0"], tmp,
                             _env(MLFLOW_TRACKING_URI=f"sqlite:///{tmp / 'mlflow.db'}"))
        if verbose:
            print(f"  train {variant} ({train_steps} steps): {train['seconds']:.1f} s, "
                  f"peak RSS {train['peak_rss_mib']:.0f} MiB", flush=True)
        rows.append(Row(f"train stage ({variant}), peak RSS (MiB)", "MiB",
                        train["peak_rss_mib"] if train["rc"] == 0 else None,
                        note=(f"{train_steps} steps incl. a quick FID, wall {train['seconds']:.1f} s"
                              if train["rc"] == 0 else "failed: " + train["tail"][-1]),
                        detail={"seconds": train["seconds"], "steps": train_steps}))
    return rows


def add_arguments(parser: argparse.ArgumentParser, quick: bool) -> None:
    env = os.environ.get
    parser.add_argument("--dvc-repeats", type=int, default=int(env("BENCH_DVC_REPEATS", 1 if quick else 2)))
    parser.add_argument("--rss-variant", default=env("BENCH_RSS_VARIANT", "final"))
    parser.add_argument("--rss-train-steps", type=int, default=int(env("BENCH_RSS_TRAIN_STEPS", 10 if quick else 100)),
                        help="train.max_steps of the measured train stage run (default 100; quick 10)")
    parser.add_argument("--no-dvc", action="store_true", default=env_flag("BENCH_NO_DVC"))
    parser.add_argument("--no-rss", action="store_true", default=env_flag("BENCH_NO_RSS"))


def bench(args, verbose: bool = True) -> list[Row]:
    rows = []
    if not args.no_dvc:
        rows += dvc_rows(args.dvc_repeats, verbose)
    if not args.no_rss:
        rows += rss_rows(args.rss_variant, args.rss_train_steps, verbose)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", default=env_flag("BENCH_QUICK"))
    add_arguments(parser, "--quick" in sys.argv or env_flag("BENCH_QUICK"))
    args = parser.parse_args()
    print(render_table(bench(args)))


if __name__ == "__main__":
    main()
