"""bench_logging: what MLflow logging costs the training loop.

The same `dcgan_lab.training.loop.fit` run twice per repeat (interleaved): once with no hooks ("off"), once with the
logging hooks of `train_variant` ("on": every `train.log_every` steps a batch of per-step metrics, at the
end of the epoch the timing metrics and a fixed-noise sample grid as an MLflow image) into a real
`RunLogger` on a temporary sqlite store. The training set is cut to `--log-steps` batches, so one run is
one whole epoch and the per-epoch image is counted once per that many steps (the real epoch, 781 steps,
pays it less often: this overstates the overhead a little).

Two figures: the wall-clock ratio on/off (noisy on a busy machine), and the time spent inside the hooks
as a share of the "on" run (measured inside the run, so far less noisy). Creating the run (the first
connection migrates the sqlite schema) is a one-off per stage, shown apart.

    python benchmarks/bench_logging.py [--log-variant baseline] [--log-steps 100] [--log-repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.common import ROOT, Row, report, standalone, summary


def logging_hooks(logger, params, fixed_z, spent: list[float]):
    """train_variant's MLflow hooks (on_log, on_epoch), timed: the seconds each call takes go to `spent`."""
    from dcgan_lab.gan.sampling import sample_grid
    from dcgan_lab.training.loop import Hooks

    def timed(fn):
        def wrapper(*args):
            started = time.perf_counter()
            fn(*args)
            spent.append(time.perf_counter() - started)
        return wrapper

    def on_epoch(epoch, step, g, timing):
        logger.log_metrics([{**timing, "epoch": epoch}], [step])
        grid = sample_grid(g, fixed_z)
        logger.log_image(grid.permute(1, 2, 0).numpy(), "samples", step)

    return Hooks(on_log=timed(lambda steps, rows: logger.log_metrics(rows, steps)), on_epoch=timed(on_epoch))


def bench(params, images: torch.Tensor, device: torch.device, variant_name: str, steps: int, repeats: int,
          verbose: bool = True) -> list[Row]:
    from dcgan_lab.core.params import flatten, to_dict
    from dcgan_lab.training.loop import fit
    from dcgan_lab.tracking.runs import RunLogger

    t = params.train
    p = replace(params, train=replace(t, epochs=1, max_steps=None, eval_every=0))
    variant = p.variant(variant_name)
    images = images[: steps * t.batch_size]  # one epoch = `steps` steps
    fixed_z = torch.randn(t.sample_grid, p.model.latent_dim, generator=torch.Generator().manual_seed(0)).to(device)
    run_params = flatten({k: v for k, v in to_dict(p).items() if k in ("data", "model", "train")})
    run_params.update(flatten(to_dict(variant), "variant"))

    off, on, shares, starts = [], [], [], []
    saved_uri = os.environ.pop("MLFLOW_TRACKING_URI", None)  # never log into the user's tracking server
    try:
        with tempfile.TemporaryDirectory(prefix="bench-mlflow-") as root:
            os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(root) / 'mlflow.db'}"
            for r in range(repeats):
                for side in (("off", "on") if r % 2 == 0 else ("on", "off")):
                    if side == "off":
                        started = time.perf_counter()
                        fit(p, variant, images, device, seed=0)
                        seconds = time.perf_counter() - started
                        off.append(seconds)
                    else:
                        started = time.perf_counter()
                        logger = RunLogger.start(variant_name, r, run_params, {}, root=Path(root))
                        starts.append(time.perf_counter() - started)
                        spent: list[float] = []
                        started = time.perf_counter()
                        fit(p, variant, images, device, seed=0, hooks=logging_hooks(logger, p, fixed_z, spent))
                        seconds = time.perf_counter() - started
                        logger.finish()
                        on.append(seconds)
                        shares.append(sum(spent) / seconds)
                    if verbose:
                        print(f"  logging {variant_name} repeat {r + 1}/{repeats} {side:3s}: {seconds:.2f} s "
                              f"({steps} steps)", flush=True)
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        if saved_uri is not None:
            os.environ["MLFLOW_TRACKING_URI"] = saved_uri
    o, f = summary(on), summary(off)
    overhead = summary([100 * s for s in shares])
    return [
        Row.compare(f"logging on/off, {steps} steps (s)", "s", o, f, 1.02, higher_is_better=False,
                    paired=[a / b for a, b in zip(on, off)],
                    note="wall clock of one epoch of `steps` steps with train_variant's MLflow hooks vs none "
                         "(sqlite store in a temp dir)", steps=steps),
        Row("logging: time inside MLflow hooks", "%", overhead["median"], target="<= 2%",
            met=overhead["median"] <= 2.0, note=f"share of the 'on' run spent in on_log/on_epoch, "
            f"{steps // t.log_every} metric batches + 1 image; spread ±{overhead['spread_pct']:.0f}%",
            detail={"ours": overhead}),
        Row("logging: MLflow run start (one-off)", "s", summary(starts)["median"],
            note="RunLogger.start on a fresh sqlite store (schema migration on first use) and the params; "
                 "once per training stage", detail={"ours": summary(starts)}),
    ]


def add_arguments(parser: argparse.ArgumentParser, quick: bool) -> None:
    env = os.environ.get
    parser.add_argument("--log-variant", default=env("BENCH_LOG_VARIANT", "baseline"))
    parser.add_argument("--log-steps", type=int, default=int(env("BENCH_LOG_STEPS", 50 if quick else 100)),
                        help="steps of the one-epoch run (default 100; quick 50)")
    parser.add_argument("--log-repeats", type=int, default=int(env("BENCH_LOG_REPEATS", 1 if quick else 3)))


def main() -> None:
    from dcgan_lab.data.splits import load_split

    args, params, device = standalone(__doc__, add_arguments)
    images, _ = load_split(ROOT / "data" / "prepared", "train")
    report(bench(params, images, device, args.log_variant, args.log_steps, args.log_repeats), args, device)


if __name__ == "__main__":
    main()
