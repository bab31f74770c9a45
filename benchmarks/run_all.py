"""All benchmarks in one process: print one table and write metrics/bench.json (what `make bench` runs).

    python benchmarks/run_all.py            # default sizes, about 6 to 8 minutes on an idle 2-core CPU
    python benchmarks/run_all.py --quick    # a smoke run, about 1 to 2 minutes
    python benchmarks/run_all.py --only train,eval --train-repeats 5

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

from benchmarks import bench_ddp, bench_eval, bench_logging, bench_pipeline, bench_train
from benchmarks.common import ROOT, Row, env_flag, machine_facts, render_table, write_json

SECTIONS = ("train", "eval", "logging", "ddp", "pipeline")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    quick = "--quick" in sys.argv or env_flag("BENCH_QUICK")
    parser.add_argument("--quick", action="store_true", default=quick, help="small sizes for a smoke run")
    parser.add_argument("--only", default=os.environ.get("BENCH_ONLY", ",".join(SECTIONS)),
                        help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--device", default=os.environ.get("BENCH_DEVICE", "auto"), help="auto | cpu | cuda")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("BENCH_THREADS", 0)),
                        help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    parser.add_argument("--out", default=os.environ.get("BENCH_OUT", str(ROOT / "metrics" / "bench.json")))
    for module in (bench_train, bench_eval, bench_logging, bench_ddp, bench_pipeline):
        module.add_arguments(parser, quick)
    args = parser.parse_args()
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"--only: unknown {', '.join(sorted(unknown))}; allowed: {', '.join(SECTIONS)}")

    import torch

    from dcgan_lab.core.params import load_params
    from dcgan_lab.core.device import resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    params = load_params(args.params)
    device = resolve_device(args.device)
    facts = machine_facts(str(device))
    print(f"dcgan-lab benchmarks on {facts['cpu']} ({facts['cpu_cores']} cores, {facts['torch_threads']} torch "
          f"threads), torch {facts['torch']}, device {device}, load average {facts['load_average_at_start']}",
          flush=True)

    started = time.perf_counter()
    rows: list[Row] = []
    failed = []
    images = labels = None

    def section(name, fn):
        t0 = time.perf_counter()
        print(f"[{name}]", flush=True)
        try:
            rows.extend(fn())
        except Exception as exc:  # one broken benchmark should not hide the others' figures
            traceback.print_exc()
            failed.append(name)
            rows.append(Row(f"{name}: FAILED", "", None, note=f"{type(exc).__name__}: {exc}"))
        print(f"[{name}] {time.perf_counter() - t0:.0f} s", flush=True)

    if "train" in sections or "logging" in sections:
        images, labels, reference_images = bench_train.load_inputs(params, args.reference_data)
    if "train" in sections:
        section("train", lambda: bench_train.bench(
            params, images, labels, device, args.variants.split(","), args.train_steps, args.train_repeats,
            args.workers, reference_images, args.peak_tflops))
    if "eval" in sections:
        section("eval", lambda: bench_eval.bench(params, device, args.eval_variant, args.eval_samples or None,
                                                 args.eval_repeats, args.tf_defaults))
    if "logging" in sections:
        section("logging", lambda: bench_logging.bench(params, images, device, args.log_variant, args.log_steps,
                                                       args.log_repeats))
    if "ddp" in sections:
        section("ddp", lambda: bench_ddp.bench(args.params, args.ddp_steps, args.ddp_variant))
    if "pipeline" in sections:
        section("pipeline", lambda: bench_pipeline.bench(args))

    total = time.perf_counter() - started
    facts["bench_seconds"] = round(total, 1)
    facts["load_average_at_end"] = list(os.getloadavg())
    print()
    print(render_table(rows))
    print(f"\n{total:.0f} s in all; load average at the end {facts['load_average_at_end']}")
    settings = {k: v for k, v in vars(args).items()}
    write_json(Path(args.out), facts, rows, settings)
    print(f"wrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
