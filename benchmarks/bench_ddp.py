"""bench_ddp: data-parallel scaling on this machine's CPUs, 1 vs 2 torchrun processes (gloo).

Each configuration is a real `python -m torch.distributed.run --standalone --nproc_per_node=K` running
`dcgan_lab.training.loop.fit` (the same code path as the train stage under `train.launcher: torchrun ...`) for
a fixed number of steps per process, after a short warm-up fit, with `train.batch_size` images per
process per step on synthetic uint8 images (throughput does not depend on pixel values). Rank 0 reports
images/s over all ranks. Three runs:

  - 1 process, all cores (what `python` would do);
  - 1 process, cores/2 threads (the per-process share of the 2-process run);
  - 2 processes, cores/2 threads each.

Scaling efficiency = 2-process images/s / (2 x 1-process-with-half-the-cores images/s); the speed-up
over one process with all cores is what a user of this machine gets.

    python benchmarks/bench_ddp.py [--ddp-steps 40] [--ddp-variant final]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT, Row, env_flag, render_table

WORKER = r"""
import json, sys, time
from dataclasses import replace
import torch
from dcgan_lab.training import distributed
from dcgan_lab.core.params import load_params
from dcgan_lab.training.loop import fit

params_path, variant, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
world = distributed.init("cpu")
p = load_params(params_path)
bs = p.train.batch_size
images = torch.randint(0, 256, (bs * (steps + 8) * world.size, 1, p.data.image_size, p.data.image_size),
                       dtype=torch.uint8, generator=torch.Generator().manual_seed(0))

def run(n):
    q = replace(p, train=replace(p.train, device="cpu", epochs=1, max_steps=n, eval_every=0, checkpoint_every=0))
    started = time.perf_counter()
    fit(q, q.variant(variant), images, torch.device("cpu"), world=world)
    return time.perf_counter() - started

run(5)  # warm-up: oneDNN primitive caches, process group
seconds = run(steps)
if world.is_main:
    print("RESULT " + json.dumps({"world": world.size, "threads": torch.get_num_threads(), "seconds": seconds,
                                  "images_per_sec": steps * bs * world.size / seconds}))
distributed.shutdown()
"""


def launch(nproc: int, threads: int, steps: int, variant: str, params: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT / "src")}
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "--no-python", sys.executable, "-c", WORKER, params, variant, str(steps)]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"torchrun failed ({out.returncode}): {out.stderr[-2000:]}")
    (line,) = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")]
    return json.loads(line.removeprefix("RESULT "))


def add_arguments(parser: argparse.ArgumentParser, quick: bool) -> None:
    parser.add_argument("--ddp-steps", type=int, default=int(os.environ.get("BENCH_DDP_STEPS", 10 if quick else 40)))
    parser.add_argument("--ddp-variant", default=os.environ.get("BENCH_DDP_VARIANT", "final"))


def bench(params_path: str, steps: int, variant: str, verbose: bool = True) -> list[Row]:
    cores = os.cpu_count() or 2
    half = max(1, cores // 2)
    runs = {}
    for name, nproc, threads in (("1 process, all cores", 1, cores), ("1 process, half the cores", 1, half),
                                 ("2 processes", 2, half)):
        started = time.perf_counter()
        runs[name] = r = launch(nproc, threads, steps, variant, params_path)
        if verbose:
            print(f"  ddp {name}: {r['images_per_sec']:.0f} img/s ({r['threads']} threads per process, "
                  f"{time.perf_counter() - started:.0f} s with start-up)", flush=True)
    two, one_half, one_all = (runs[k]["images_per_sec"] for k in
                              ("2 processes", "1 process, half the cores", "1 process, all cores"))
    efficiency = two / (2 * one_half)
    return [
        Row(f"ddp {variant}: 2 procs vs 1 (same cores/proc)", "img/s", two, one_half, "", None, two / one_half,
            note=f"scaling efficiency {efficiency:.0%} (2-proc img/s / (2 x 1-proc img/s)), gloo, "
                 f"{steps} steps of {variant}", detail=runs),
        Row(f"ddp {variant}: 2 procs vs 1 proc on all cores", "img/s", two, one_all, "", None, two / one_all,
            note="what this machine gains from torchrun"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    quick = "--quick" in sys.argv or env_flag("BENCH_QUICK")
    parser.add_argument("--quick", action="store_true", default=quick)
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    add_arguments(parser, quick)
    args = parser.parse_args()
    print(render_table(bench(args.params, args.ddp_steps, args.ddp_variant)))


if __name__ == "__main__":
    main()
