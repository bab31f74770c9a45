"""bench_pipeline: no-op `dvc repro` time, the peak memory of the prepare and train stages, and a `folder`
data set through the bounded-memory prepare and the streamed training path.

- `dvc status` is timed on the real repository (read-only). `dvc repro` is timed only when `dvc status`
  says everything is up to date, so that it really is a no-op; otherwise it would retrain, and the row
  says so instead. Both run with the venv's bin/ first on PATH, as `make repro` does.
- Peak RSS (the child's VmHWM, polled from /proc) of `stages/prepare.py` writing to a temp dir, and of
  `stages/train.py` run in a temp copy of the repository layout (params.yaml with `train.max_steps`
  cut short, data/prepared and models/classifier linked read-only, MLflow in a temp sqlite store), so no
  DVC output of the repository is touched. Peak memory is reached early (data, models, torch-fidelity
  for the quick FID at the last step), so a short run shows it.
- A synthetic `folder` data set in a temp dir (`--folder-images` random 64x64 RGB PNGs in 10 class folders;
  20,000 by default, 234 MiB decoded; 5,000 with --quick; one in ten distinct): the wall time of `stages/prepare.py` on it and its
  peak anonymous memory (heap, not the page cache that the memory-mapped output lives in) against the size
  of the decoded set; then training images/s on its train split with `train.stream: true` against `false`,
  interleaved in this process (ABBA), and the same for the batch feeders alone.

    python benchmarks/bench_pipeline.py [--rss-train-steps 100] [--folder-images 20000] [--no-dvc] [--no-rss]
                                        [--no-folder] [--quick]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml

from benchmarks.common import ROOT, Row, env_flag, render_table, summary

FOLDER_SIZE = 64  # pixels: the research setting's image size

BIN = Path(sys.executable).parent


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def _proc_kib(path: str, field: str) -> int:
    """One `Field:  123 kB` line of a /proc file (0 once the process is gone)."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (DataLoader workers, for one)."""
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        for children in Path(f"/proc/{tree[-1]}/task").glob("*/children"):
            try:
                todo += [int(c) for c in children.read_text().split()]
            except OSError:
                pass
    return tree


def run_measured(cmd: list[str], cwd: Path, env: dict, timeout: float = 900, anon: bool = False) -> dict:
    """Run `cmd` to the end; its wall time, exit code, output tail and peak RSS (MiB).

    The peak is the child's VmHWM (/proc/<pid>/status), polled until it exits: wait4's ru_maxrss would
    include this (large) benchmark process, since Linux carries maxrss across fork and exec. With `anon`,
    also the peaks of anonymous memory (heap, not file pages or the page cache): `peak_rss_anon_mib` is the
    child's RssAnon, `peak_tree_anon_mib` the sum of Pss_Anon over the child and its descendants (PSS, so
    pages a forked worker still shares with its parent count once)."""
    started = time.perf_counter()
    hwm_kib = rss_anon_kib = tree_anon_kib = 0
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = started + timeout
        while True:
            hwm_kib = max(hwm_kib, _proc_kib(f"/proc/{proc.pid}/status", "VmHWM"))
            if anon:
                rss_anon_kib = max(rss_anon_kib, _proc_kib(f"/proc/{proc.pid}/status", "RssAnon"))
                tree = _process_tree(proc.pid)
                tree_anon_kib = max(tree_anon_kib, sum(_proc_kib(f"/proc/{p}/smaps_rollup", "Pss_Anon") for p in tree))
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
    return {"seconds": seconds, "rc": proc.returncode, "tail": tail, "peak_rss_mib": hwm_kib / 1024,
            "peak_rss_anon_mib": rss_anon_kib / 1024, "peak_tree_anon_mib": tree_anon_kib / 1024}


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
        train = run_measured([python, str(ROOT / "stages" / "train.py"), "--variant", variant, "--seed", "0",
                              "--data", "data/prepared", "--classifier", "models/classifier", "--models", "models",
                              "--checkpoints", "checkpoints", "--metrics", "metrics/train"], tmp,
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


def _write_image_folder(root: Path, n: int) -> None:
    """`n` random RGB PNGs in 10 class folders. One in ten is encoded, the rest are copies of those files'
    bytes under other names: decoding costs the same, and encoding them all would take longer than the
    prepare being measured (0.7 ms per image here, even at zlib level 0)."""
    import numpy as np
    from PIL import Image

    rng, blobs = np.random.default_rng(0), []
    for _ in range(max(1, n // 10)):
        buf = io.BytesIO()
        pixels = rng.integers(0, 256, (FOLDER_SIZE, FOLDER_SIZE, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(buf, format="PNG", compress_level=0)
        blobs.append(buf.getvalue())
    for k in range(n):
        folder = root / f"class{k % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{k}.png").write_bytes(blobs[k // 10 % len(blobs)])


def _images_per_sec(params, variant: str, images, device, stream: bool, warm: int, timed: int) -> float:
    """fit() with train.stream set, timed from its host read after `warm` steps to the one after `timed` more."""
    from dcgan_lab.training.loop import Hooks, fit

    t = replace(params.train, stream=stream, max_steps=warm + timed, epochs=1, log_every=warm, eval_every=0)
    stamps = []
    fit(replace(params, train=t), params.variant(variant), images, device,
        hooks=Hooks(on_log=lambda steps, rows: stamps.append((steps[-1], time.perf_counter()))))
    (s0, t0), (s1, t1) = stamps[0], stamps[-1]
    return (s1 - s0) * t.batch_size / (t1 - t0)


def _batches_per_sec(feeder, images, device, batch_size: int, n: int) -> float:
    """The feeder alone: `n` batches of a random order, as fast as they come (no training step to hide behind)."""
    import torch

    feed = feeder(images, device, batch_size)
    feed.set_order(torch.randperm(len(images), generator=torch.Generator().manual_seed(0)))
    started = time.perf_counter()
    for i in range(n):
        last = feed.batch(i)
    last.sum().item()  # the copies to the device have landed
    seconds = time.perf_counter() - started
    feed.close()
    return n / seconds


def _prepare_rows(tmp: Path, n: int, verbose: bool) -> list[Row]:
    """stages/prepare.py on the folder at tmp/imgs: its wall time and peak anonymous memory."""
    python, decoded_mib = sys.executable, n * 3 * FOLDER_SIZE**2 / 2**20
    prep = run_measured([python, str(ROOT / "stages" / "prepare.py"), "--out", str(tmp / "prepared"),
                         "--params", str(tmp / "params.yaml")], ROOT, _env(), anon=True)
    # What the imports alone hold, so that the data's share of the peak can be read off.
    base = run_measured([python, "-c", "import dcgan_lab.data.prepare, torchvision.datasets"], ROOT, _env(), anon=True)
    if verbose:
        print(f"  folder: prepare {prep['seconds']:.1f} s, peak anonymous {prep['peak_tree_anon_mib']:.0f} MiB "
              f"(imports alone {base['peak_tree_anon_mib']:.0f} MiB) for {decoded_mib:.0f} MiB decoded", flush=True)
    if prep["rc"] != 0:
        raise RuntimeError(f"prepare on the folder data set failed: {' | '.join(prep['tail'])}")
    above_imports = prep["peak_tree_anon_mib"] - base["peak_tree_anon_mib"]
    name = f"prepare folder ({n} {FOLDER_SIZE}x{FOLDER_SIZE} RGB)"
    return [
        Row(f"{name}, anon memory above the imports (MiB)", "MiB", above_imports, decoded_mib,
            ratio=above_imports / decoded_mib,
            note=(f"reference: the decoded set's size. Peak of Pss_Anon summed over the stage and its DataLoader "
                  f"workers, polled every 20 ms: {prep['peak_tree_anon_mib']:.0f} MiB, less the "
                  f"{base['peak_tree_anon_mib']:.0f} MiB that its imports alone hold (the decoded images are file "
                  f"pages, not anonymous memory); the stage process alone peaked at RssAnon "
                  f"{prep['peak_rss_anon_mib']:.0f} MiB"),
            detail={"images": n, "decoded_mib": decoded_mib, "peak_tree_anon_mib": prep["peak_tree_anon_mib"],
                    "imports_anon_mib": base["peak_tree_anon_mib"], "rss_anon_mib": prep["peak_rss_anon_mib"],
                    "peak_rss_mib": prep["peak_rss_mib"]}),
        Row(f"{name}, wall time (s)", "s", prep["seconds"],
            note=f"{n / prep['seconds']:.0f} images/s with {min(8, os.cpu_count())} DataLoader workers, incl. "
                 "start-up, torch.save and sha256", detail={"seconds": prep["seconds"]}),
    ]


def _stream_rows(args, tmp: Path, verbose: bool) -> list[Row]:
    """Training and the batch feeders alone on the prepared train split, stream=true against false."""
    from dcgan_lab.training import batches
    from dcgan_lab.core.params import load_params
    from dcgan_lab.data.splits import load_split
    from dcgan_lab.core.device import resolve_device

    params = load_params(tmp / "params.yaml")
    device = resolve_device(getattr(args, "device", "auto"))
    images = load_split(tmp / "prepared", "train", mmap=True)[0]  # as the train stage loads it
    bs, warm, timed = params.train.batch_size, 5, args.folder_steps
    ips = {True: [], False: []}
    for stream in [False, True, True, False] * args.folder_repeats:  # ABBA: drift lands on both sides
        ips[stream].append(_images_per_sec(params, args.folder_variant, images, device, stream, warm, timed))
    n_batches = min(200, len(images) // bs)
    bps = {True: [], False: []}
    for stream in [False, True, True, False]:
        feeder = batches.Streamed if stream else batches.OnDevice
        bps[stream].append(_batches_per_sec(feeder, images, device, bs, n_batches))
    if verbose:
        print(f"  train {args.folder_variant}: stream=true {[round(x, 1) for x in ips[True]]} img/s, "
              f"false {[round(x, 1) for x in ips[False]]} img/s", flush=True)
    us = {stream: 1e6 / summary(runs)["median"] for stream, runs in bps.items()}
    return [
        _true_vs_false(f"train {args.folder_variant} on it, stream=true vs false (img/s)", "img/s", ips,
                       f"{timed} timed steps of {bs} after {warm} warm-up ones, ABBA x {args.folder_repeats}, on "
                       f"{device}; no target: on a shared 2-core CPU the run-to-run spread is larger than the "
                       "gather, which the next row times alone. The set is in the page cache after prepare and the "
                       "sha256 check: no disk reads"),
        _true_vs_false("batch feeder alone, stream=true vs false (batches/s)", "batch/s", bps,
                       f"{n_batches} batches of {bs} in a row, nothing to overlap with: {us[True]:.0f} vs "
                       f"{us[False]:.0f} us per batch"),
    ]


def _true_vs_false(name: str, unit: str, runs: dict[bool, list[float]], note: str) -> Row:
    on, off = summary(runs[True]), summary(runs[False])
    return Row(name, unit, on["median"], off["median"], ratio=on["median"] / off["median"], note=note,
               detail={"ours": on, "reference": off})


def folder_rows(args, verbose: bool = True) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="bench-folder-") as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        _write_image_folder(tmp / "imgs", args.folder_images)
        if verbose:
            print(f"  folder: {args.folder_images} PNGs written in {time.perf_counter() - started:.1f} s", flush=True)
        raw = yaml.safe_load((ROOT / "params.yaml").read_text())
        raw["data"].update(dataset="folder", root=str(tmp / "imgs"), image_size=FOLDER_SIZE, train_limit=None)
        (tmp / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        return _prepare_rows(tmp, args.folder_images, verbose) + _stream_rows(args, tmp, verbose)


def add_arguments(parser: argparse.ArgumentParser, quick: bool) -> None:
    env = os.environ.get
    parser.add_argument("--dvc-repeats", type=int, default=int(env("BENCH_DVC_REPEATS", 1 if quick else 2)))
    parser.add_argument("--rss-variant", default=env("BENCH_RSS_VARIANT", "final"))
    parser.add_argument("--rss-train-steps", type=int, default=int(env("BENCH_RSS_TRAIN_STEPS", 10 if quick else 100)),
                        help="train.max_steps of the measured train stage run (default 100; quick 10)")
    parser.add_argument("--no-dvc", action="store_true", default=env_flag("BENCH_NO_DVC"))
    parser.add_argument("--no-rss", action="store_true", default=env_flag("BENCH_NO_RSS"))
    parser.add_argument("--folder-images", type=int, default=int(env("BENCH_FOLDER_IMAGES", 5000 if quick else 20000)),
                        help="random 64x64 PNGs of the synthetic folder data set (default 20000; quick 5000)")
    parser.add_argument("--folder-steps", type=int, default=int(env("BENCH_FOLDER_STEPS", 5 if quick else 10)),
                        help="timed training steps per stream=true/false run (default 10; quick 5)")
    parser.add_argument("--folder-repeats", type=int, default=int(env("BENCH_FOLDER_REPEATS", 1)),
                        help="ABBA rounds of the stream=true/false training runs (default 1: two runs per side)")
    parser.add_argument("--folder-variant", default=env("BENCH_FOLDER_VARIANT", "baseline"))
    parser.add_argument("--no-folder", action="store_true", default=env_flag("BENCH_NO_FOLDER"))


def bench(args, verbose: bool = True) -> list[Row]:
    rows = []
    if not args.no_dvc:
        rows += dvc_rows(args.dvc_repeats, verbose)
    if not args.no_rss:
        rows += rss_rows(args.rss_variant, args.rss_train_steps, verbose)
    if not args.no_folder:
        rows += folder_rows(args, verbose)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", default=env_flag("BENCH_QUICK"))
    add_arguments(parser, "--quick" in sys.argv or env_flag("BENCH_QUICK"))
    args = parser.parse_args()
    print(render_table(bench(args)))


if __name__ == "__main__":
    main()
