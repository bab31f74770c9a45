"""gpu_check: every speed path of the training step on a CUDA GPU, one table, within 8 minutes (`make gpu-check`).

1. The train benchmark (bench_train: our `fit` vs benchmarks/reference_dcgan.py, ABBA), variant `final`, one path
   at a time over an eager fp32 NCHW base (train.amp, compile, channels_last, stream false): fused Adam (the base
   itself: the package fuses Adam on CUDA with no train.* switch, training/state.py), bf16 autocast (train.amp),
   fp16 + GradScaler (train.amp with torch.cuda.is_bf16_supported patched to False, as on a T4), torch.compile,
   channels_last, batches streamed through pinned memory (train.stream), and params.yaml as it is (on CUDA: all).
2. The evaluation benchmark (bench_eval), on `make repro`'s outputs if all are there, else on stand-ins
   (untrained G and classifier, noise as the real split: the times hold, the scores mean nothing).
3. A train stage (training.run.train_variant, as stages/train.py calls it) at docs/speed.md's research setting
   (data.image_size 64, model.g_width and d_width 64) on noise images, its MLflow run in a temp store, its outputs
   in a temp dir; four epochs, the row the median img/s the stage logged for epochs 2-4 (1 pays for compiling).

Sizes on CUDA (flags; --quick: small): a train path 50 warm-up (train.log_every) + 200 timed steps of 64 at 32x32,
up to 3 runs a side, none started after 30 s of the path; then eval, 5,000 generated vs 5,000 real; then the stage,
200 steps of 64 at 64x64. A part starts only with its allowance (a path 30 s, eval 60 s, the stage 150 s) left of
the 480 s budget, else it is a row saying so; a part that fails (an unsupported dtype, a compile error, out of
memory) is a row with the exception's type and message. MFU = model FLOPs/image (bench_train) x img/s /
the datasheet's dense peak for the path's precision (common.PEAK_TFLOPS; unknown GPU: blank). Prints the table,
writes benchmarks/RESULTS-cuda.md (--out), exits 0 unless nothing ran. Without CUDA: one line saying so, nothing
written, exit 0; --device cpu runs every path on the CPU.

    python benchmarks/gpu_check.py                                        # on a CUDA machine
    python benchmarks/gpu_check.py --device cpu --quick --out /tmp/r.md   # the same paths, small, on a CPU
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from unittest import mock

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks import bench_eval, bench_train
from benchmarks import reference_dcgan as ref
from benchmarks.common import ROOT, Row, datasheet_peaks, fmt, machine_facts, standalone, write_json
from benchmarks.stand_ins import noise_images, noise_prepared, repro_outputs

NO_CUDA = "gpu-check: no CUDA device (torch.cuda.is_available() is False); nothing to check"
BASE = {"amp": False, "compile": False, "channels_last": False, "stream": False}  # eager fp32 NCHW, data on device
STAGE_NEEDS, EVAL_NEEDS = 150.0, 60.0  # seconds of the budget the stage and the evaluation start with, at least


@dataclass(frozen=True)
class SpeedPath:
    name: str
    train: dict  # train.* over BASE (`own`: over params.yaml's own train.*)
    about: str
    fp16: bool = False  # as on a GPU without bf16: speed.precision falls back to fp16 with GradScalers
    own: bool = False


PATHS = (
    SpeedPath("fused Adam (fp32 eager base)", {}, "the base of the rows below; Adam fused: {fused} (the package "
              "fuses it on CUDA, with no train.* switch: training/state.py)"),
    SpeedPath("bf16 autocast", {"amp": True}, "train.amp: true"),
    SpeedPath("fp16 + GradScaler", {"amp": True}, "train.amp: true where bf16 is missing", fp16=True),
    SpeedPath("torch.compile", {"compile": True}, "train.compile: true; compiled in the warm-up steps"),
    SpeedPath("channels_last", {"channels_last": True}, "train.channels_last: true"),
    SpeedPath("streamed, pinned memory", {"stream": True}, "train.stream: true (pinned on CUDA only)"),
    SpeedPath("params.yaml as is", {}, "what the train stage runs (amp, compile null: on for CUDA)", own=True),
)


class Unsupported(RuntimeError):
    """A path this device cannot take."""


def no_bf16():
    return mock.patch.object(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)


def precision_name(train, device: torch.device, fp16: bool) -> str:
    """The precision the package's speed.precision picks for these train.* values: the PEAK_TFLOPS key."""
    from dcgan_lab.training import speed

    with no_bf16() if fp16 else contextlib.nullcontext():
        dtype = speed.precision(train, device).dtype
    if dtype is None:
        return "tf32" if device.type == "cuda" and torch.backends.cudnn.allow_tf32 else "fp32"
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def mfu(flops_per_image: float, images_per_sec: float | None, peaks: dict | None, precision: str) -> float | None:
    peak = peaks and peaks.get(precision)
    return 100 * flops_per_image * images_per_sec / (peak * 1e12) if peak and images_per_sec else None


@dataclass
class TrainBench:
    """What every train path shares: images, the reference's DataLoader, sizes, FLOPs per image, peaks."""

    images: torch.Tensor
    loader: object
    warm: int
    timed: int
    workers: int
    flops: float
    peaks: dict | None
    fused: bool  # whether the package's Adam is fused on this device
    data: str  # where the images come from

    def about(self, params, args) -> str:
        return (f"variant {args.variant}, batch {params.train.batch_size}, {self.warm} warm-up + {self.timed} timed "
                f"steps, at most {args.train_repeats} run(s) a side (ABBA), none started after {args.path_seconds:g} s "
                f"of a path; {self.data}")

    def run(self, path: SpeedPath, params, device: torch.device, args) -> list[Row]:
        p = replace(params, train=replace(params.train, **{**({} if path.own else BASE), **path.train}))
        precision = precision_name(p.train, device, path.fp16)
        if path.fp16 and precision != "fp16":
            raise Unsupported(f"fp16 + GradScaler is the package's path for CUDA GPUs without bf16; on {device} "
                              f"speed.precision picks {precision}")
        with no_bf16() if path.fp16 else contextlib.nullcontext():
            ours, theirs = bench_train.interleaved(p, args.variant, self.images, self.loader, device, self.warm,
                                                   self.timed, args.train_repeats,
                                                   until=time.perf_counter() + args.path_seconds, label=path.name)
        row = bench_train.compare_row(path.name, ours, theirs, bench_train.TARGET[device.type], p, self.warm,
                                      self.timed, self.workers, note=path.about.format(fused=self.fused),
                                      precision=precision)
        row.detail["mfu_pct"] = mfu(self.flops, row.ours, self.peaks, precision)
        return [row]


def train_bench(params, device: torch.device, args, tmp: Path, peaks: dict | None) -> TrainBench:
    """The prepared train split (what bench_train reads) if --data has one, else noise images for the run."""
    from dcgan_lab.data.splits import load_split
    from dcgan_lab.training.spec import RunSpec
    from dcgan_lab.training.state import new_state

    warm, timed, workers = bench_train.sizes(params, device, args.train_steps, args.workers)
    if (Path(args.data) / "manifest.json").is_file():
        (images, labels), data = load_split(Path(args.data), "train"), f"the prepared train split ({args.data})"
    else:  # an image per step and side, so neither restarts an epoch while it is timed
        n = (warm + timed + 1) * params.train.batch_size
        (images, labels), data = noise_images(n, params.data.image_size), f"{n} noise images (no data at {args.data})"
    loader = ref.make_dataloader(ref.mnist_dataset(images, labels, tmp, params.data.image_size),
                                 params.train.batch_size, workers)
    flops = bench_train.flops_per_image(params, args.variant, device)["train_step_flops_per_image"]
    fused = new_state(RunSpec.resolve(params, args.variant, 0, images.shape[1]), device).opt_g.defaults["fused"]
    return TrainBench(images, loader, warm, timed, workers, flops, peaks, bool(fused), data)


def research_stage(params, device: torch.device, args, peaks: dict | None) -> list[Row]:
    from mlflow.tracking import MlflowClient

    from dcgan_lab.core import paths
    from dcgan_lab.core.params import parse_params, to_dict
    from dcgan_lab.data.splits import read_manifest
    from dcgan_lab.training.run import train_variant
    from dcgan_lab.training.spec import RunSpec

    raw = to_dict(params)  # the real params at the research setting, validated as any params.yaml is
    raw["data"]["image_size"] = args.research_size
    raw["model"].update(g_width=args.research_width, d_width=args.research_width)
    raw["train"].update(device=device.type, max_steps=args.stage_steps, epochs=args.stage_steps, eval_every=0)
    p = parse_params(raw)
    per_epoch = max(1, args.stage_steps // 4) * p.train.batch_size  # images: four epochs
    with (tempfile.TemporaryDirectory(prefix="gpu-check-stage-") as tmp, contextlib.chdir(tmp),  # artifacts: here
          mock.patch.dict(os.environ, {"MLFLOW_TRACKING_URI": f"sqlite:///{Path(tmp) / 'mlflow.db'}"})):
        data = noise_prepared(Path(tmp) / "prepared", args.research_size, {"train": per_epoch})
        run = paths.run_paths(args.variant, 0, Path(tmp) / "models", Path(tmp) / "checkpoints", Path(tmp) / "metrics")
        started = time.perf_counter()
        summary = train_variant(RunSpec.for_data(p, args.variant, 0, read_manifest(data)), data, run)
        wall = time.perf_counter() - started
        logged = json.loads(run.model.mlflow_run.read_text())
        history = MlflowClient(logged["tracking_uri"]).get_metric_history(logged["run_id"], "images_per_sec")
        rates = [m.value for m in sorted(history, key=lambda m: m.step)]  # one per epoch
    steady, precision = statistics.median(rates[1:] or rates), precision_name(p.train, device, fp16=False)
    flops = bench_train.flops_per_image(p, args.variant, device)["train_step_flops_per_image"]
    name = f"train stage, {args.research_size}x{args.research_size}, width {args.research_width}"
    return [Row(name, "img/s", steady, detail={"precision": precision, "mfu_pct": mfu(flops, steady, peaks, precision),
                                                "epoch_images_per_sec": rates, "wall_seconds": wall, **summary},
                note=f"{summary['steps']} steps of {p.train.batch_size} in {wall:.1f} s, the whole stage (MLflow run, "
                     f"checkpoint, EMA statistics, outputs); median img/s of epochs 2-{len(rates)}, epoch 1 "
                     f"{rates[0]:.0f} img/s; noise images")]


def evaluation(params, device: torch.device, args) -> list[Row]:
    """bench_eval's rows, on make repro's outputs where all are there (and not --stand-in), else on stand-ins."""
    from dcgan_lab.core import paths

    needs = (ROOT / "data" / "prepared" / "manifest.json", paths.classifier_checkpoint(ROOT / "models" / "classifier"),
             paths.model_dir(ROOT / "models", args.variant, params.ablation.seeds[0]).checkpoint)
    if not args.stand_in and all(p.is_file() for p in needs):
        return bench_eval.bench(params, device, args.variant, args.eval_samples, args.eval_repeats)
    with tempfile.TemporaryDirectory(prefix="gpu-check-eval-") as tmp:
        root = repro_outputs(Path(tmp), params, args.variant, max(args.eval_samples, 200))  # 200: bench_eval's warm-up
        rows = bench_eval.bench(params, device, args.variant, args.eval_samples, args.eval_repeats, root=root)
    rows[0].note = f"on stand-ins (no make repro outputs, or --stand-in: untrained G and classifier); {rows[0].note}"
    return rows


def failed(name: str, unit: str, exc: Exception) -> Row:
    """The row of a part that raised: the exception's type and message on one line (the traceback: stderr)."""
    traceback.print_exc()
    return Row(name, unit, None, note=f"failed: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}")


def check(params, device: torch.device, args, peaks: dict | None, deadline: float) -> tuple[list[Row], str]:
    """Every part in turn, each a row (or rows) of figures, or of why not; and what the train rows ran on."""
    rows: list[Row] = []

    def part(name: str, unit: str, needs: float, run) -> None:
        if (left := deadline - (started := time.perf_counter())) < needs:
            rows.append(Row(name, unit, None, note=f"skipped: {left:.0f} s of the {args.budget:.0f} s budget left, "
                                                   f"under the {needs:.0f} s this needs"))
            return
        print(f"[{name}]", flush=True)
        try:
            rows.extend(run())
            print(f"[{name}] {time.perf_counter() - started:.0f} s", flush=True)
        except Exception as exc:  # one broken path must not hide the others' figures
            if device.type == "cuda":
                torch.cuda.empty_cache()  # after an out-of-memory error, the next path starts clean
            rows.append(failed(name, unit, exc))

    with tempfile.TemporaryDirectory(prefix="gpu-check-mnist-") as tmp:
        try:
            bench = train_bench(params, device, args, Path(tmp), peaks)
        except Exception as exc:
            bench = None
            rows.append(failed("train benchmark set-up", "", exc))
        for path in PATHS:
            if bench is None:
                rows.append(Row(path.name, "img/s", None, note="not run: the train benchmark's set-up failed"))
            else:
                part(path.name, "img/s", args.path_seconds, lambda: bench.run(path, params, device, args))
    part("eval", "s", EVAL_NEEDS, lambda: evaluation(params, device, args))
    part("train stage, research setting", "img/s", STAGE_NEEDS, lambda: research_stage(params, device, args, peaks))
    return rows, "set-up failed" if bench is None else bench.about(params, args)


def peaks_for(device: torch.device, override: float | None) -> tuple[str, dict | None, str]:
    """The device's name, its dense peaks by precision (None: unknown), and where they come from."""
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{device} (no GPU: --device {device})"
    if override:
        return gpu, dict.fromkeys(("fp32", "tf32", "bf16", "fp16"), override), f"--peak-tflops {override:g} TFLOP/s"
    found = datasheet_peaks(gpu) if device.type == "cuda" else None
    if found is None:
        return gpu, None, "unknown (not in common.PEAK_TFLOPS; --peak-tflops gives one): MFU left blank"
    return gpu, found[1], f"{found[0]} datasheet, dense TFLOP/s: " + ", ".join(f"{k} {v}" for k, v in found[1].items())


def table(rows: list[Row]):
    import pandas as pd

    return pd.DataFrame([{
        "path": r.name, "ours": fmt(r.ours, r.unit), "classic loop / direct": fmt(r.reference, r.unit),
        "ratio": "-" if r.ratio is None else f"{r.ratio:.2f}x", "precision": r.detail.get("precision", "-"),
        "MFU": "" if r.detail.get("mfu_pct") is None else f"{r.detail['mfu_pct']:.1f}%", "note": r.note,
    } for r in rows])


def markdown(rows: list[Row], facts: dict, gpu: str, peak_about: str, bench_about: str, seconds: float) -> str:
    dirty = " (uncommitted changes)" if facts["git_dirty"] else ""
    return "\n".join([
        "# GPU check", "",
        f"What `make gpu-check` (benchmarks/gpu_check.py; benchmarks/README.md) measured on **{gpu}**: torch "
        f"{facts['torch']} (CUDA {torch.version.cuda} build), {facts['cpu']} ({facts['cpu_cores']} cores), commit "
        f"{(facts['git_commit'] or 'unknown')[:7]}{dirty}, {facts['date']}, {seconds:.0f} s in all.", "",
        f"Peak for MFU: {peak_about}.", "", f"Train rows: {bench_about}.", "",
        table(rows).to_markdown(index=False), ""])


def add_arguments(parser: argparse.ArgumentParser, quick: bool) -> None:
    add = parser.add_argument
    add("--variant", default="final", help="the params.yaml variant every part trains or scores (default final)")
    add("--train-steps", type=int, default=10 if quick else 200, help="timed steps a run (default 200, quick 10)")
    add("--train-repeats", type=int, default=1 if quick else 3, help="repeats a side (default 3, quick 1)")
    add("--path-seconds", type=float, default=20 if quick else 30, help="no repeat starts after this (default 30)")
    add("--workers", type=int, default=-1, help="reference DataLoader workers (default: 2 on CUDA, 0 on a CPU)")
    add("--stage-steps", type=int, default=4 if quick else 200, help="the stage's steps (default 200, quick 4)")
    add("--research-size", type=int, default=64, help="the stage's data.image_size (docs/speed.md: 64)")
    add("--research-width", type=int, default=64, help="the stage's model.g_width and d_width (docs/speed.md: 64)")
    add("--eval-samples", type=int, default=200 if quick else 5000, help="generated and real images (quick 200)")
    add("--eval-repeats", type=int, default=1, help="interleaved repeats of the evaluation (default 1)")
    add("--stand-in", action="store_true", help="evaluate stand-ins even where make repro's outputs are")
    add("--data", default=str(ROOT / "data" / "prepared"), help="the prepared data whose train split the paths read")
    add("--budget", type=float, default=480.0, help="seconds for the whole check (default 480)")
    add("--peak-tflops", type=float, default=None, help="one peak for every precision, instead of the datasheet's")
    add("--out", default=str(ROOT / "benchmarks" / "RESULTS-cuda.md"))


def main() -> int:
    started = time.perf_counter()
    args, params, device = standalone(__doc__, add_arguments)
    if args.device == "auto" and device.type != "cuda":
        print(NO_CUDA)
        return 0
    from dcgan_lab.core.files import atomic_write_text

    gpu, peaks, peak_about = peaks_for(device, args.peak_tflops)
    rows, bench_about = check(params, device, args, peaks, started + args.budget)
    seconds, facts = time.perf_counter() - started, machine_facts(str(device))
    print(f"\n{table(rows).drop(columns='note').to_string(index=False)}\n\nnotes:")
    print("\n".join(f"  {r.name}: {r.note}" for r in rows if r.note))
    atomic_write_text(Path(args.out), markdown(rows, facts, gpu, peak_about, bench_about, seconds))
    if args.json:
        write_json(Path(args.json), facts, rows, vars(args))
    print(f"\n{seconds:.0f} s in all; wrote {args.out}")
    return 0 if any(r.ours is not None for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
