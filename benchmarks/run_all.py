"""All benchmarks in one process: print one table and write metrics/bench.json (what `make bench` runs).

    python benchmarks/run_all.py            # default sizes, about 6 minutes on an idle 2-core CPU
    python benchmarks/run_all.py --quick    # a smoke run, under a minute
    python benchmarks/run_all.py --only train,eval --train-repeats 5
    python benchmarks/run_all.py --only train,train_avx2   # both instruction sets, side by side

Every size has a flag (see --help) and an environment variable (BENCH_QUICK=1, BENCH_TRAIN_STEPS, ...),
so `make bench BENCH_ARGS="--quick"` or `BENCH_QUICK=1 make bench` both work.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml

from benchmarks import bench_eval, bench_logging, bench_pipeline, bench_startup, bench_train, isa
from benchmarks.common import ROOT, Row, comma_list, machine_facts, render_table, standalone, write_json

# train_avx2: the train benchmark again in a child process restricted to AVX2 (isa.py), on a CPU only; the same
# for startup_avx2 (each stage's start-up, bench_startup.py).
SECTIONS = ("train", "train_avx2", "eval", "logging", "pipeline", "startup", "startup_avx2")


def add_arguments(parser: argparse.ArgumentParser, quick: bool) -> None:
    parser.add_argument("--only", type=comma_list(SECTIONS), default=os.environ.get("BENCH_ONLY", ",".join(SECTIONS)),
                        help=f"comma-separated subset of {','.join(SECTIONS)}")


def train_args(args: argparse.Namespace) -> list[str]:
    """bench_train.py's command line for the same train benchmark as this run's, for the restricted child."""
    out = ["--device", "cpu", "--params", args.params, "--variants", args.variants, "--train-steps",
           str(args.train_steps), "--train-repeats", str(args.train_repeats), "--workers", str(args.workers),
           "--reference-data", args.reference_data, "--data", args.data]
    return out + (["--threads", str(args.threads)] if args.threads else []) + (["--quick"] if args.quick else [])


def main() -> int:
    modules = (bench_train, bench_eval, bench_logging, bench_pipeline, bench_startup)
    args, params, device = standalone(__doc__, add_arguments, *(m.add_arguments for m in modules),
                                      json_default=str(ROOT / "metrics" / "bench.json"))
    facts = machine_facts(str(device))
    print(f"dcgan-lab benchmarks on {facts['cpu']} ({facts['cpu_cores']} cores, {facts['torch_threads']} torch "
          f"threads), torch {facts['torch']}, device {device}, load average {facts['load_average_at_start']}",
          flush=True)

    started = time.perf_counter()
    rows: list[Row] = []
    failed = []

    def section(name, fn):
        if name not in args.only:
            return
        t0 = time.perf_counter()
        print(f"[{name}]", flush=True)
        try:
            rows.extend(fn())
        except Exception as exc:  # one broken benchmark should not hide the others' figures
            traceback.print_exc()
            failed.append(name)
            rows.append(Row(f"{name}: FAILED", "", None, note=f"{type(exc).__name__}: {exc}"))
        print(f"[{name}] {time.perf_counter() - t0:.0f} s", flush=True)

    if {"train", "logging"} & set(args.only):
        images, labels, reference_images = bench_train.load_inputs(params, args.reference_data, Path(args.data))
    section("train", lambda: bench_train.bench(
        params, images, labels, device, bench_train.variant_names(args.variants, params), args.train_steps,
        args.train_repeats, args.workers, reference_images, args.peak_tflops))
    if device.type == "cpu":
        section("train_avx2", lambda: isa.restricted_train_rows(train_args(args)))
    section("eval", lambda: bench_eval.bench(params, device, args.eval_variant, args.eval_samples or None,
                                             args.eval_repeats))
    section("logging", lambda: bench_logging.bench(params, images, device, args.log_variant, args.log_steps,
                                                   args.log_repeats))
    section("pipeline", lambda: bench_pipeline.bench(args.dvc_repeats))
    raw = yaml.safe_load(Path(args.params).read_text())
    stages = args.startup_stages or None
    section("startup", lambda: bench_startup.bench(raw, args.startup_repeats, stages))
    if device.type == "cpu":
        section("startup_avx2", lambda: bench_startup.bench(raw, args.startup_repeats, stages, avx2=True))

    total = time.perf_counter() - started
    facts["bench_seconds"] = round(total, 1)
    facts["load_average_at_end"] = list(os.getloadavg())
    print()
    print(render_table(rows))
    print(f"\n{total:.0f} s in all; load average at the end {facts['load_average_at_end']}")
    write_json(Path(args.json), facts, rows, vars(args))
    print(f"wrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
