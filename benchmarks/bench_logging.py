"""bench_logging: what MLflow logging costs the training loop.

The same `dcgan_lab.training.loop.fit` run twice per repeat (interleaved): once with no hooks ("off"), once with the
logging hooks of `train_variant` ("on": every `train.log_every` steps a batch of per-step metrics, at the
end of the epoch the timing metrics and a fixed-noise sample grid as an MLflow image) into a real
`RunLogger` on a temporary sqlite store. The training set is cut to `--log-steps` batches, so one run is
one whole epoch and the per-epoch image is counted once per that many steps (the real epoch, 781 steps,
pays it less often: this overstates the overhead a little).

Two figures: the wall-clock ratio on/off (noisy on a busy machine), and the time spent inside the hooks
as a share of the "on" run (measured inside the run, so far less noisy). Creating the run is left out:
a one-off per stage.

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
from unittest import mock

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.common import ROOT, Row, report, standalone, summary


def logging_hooks(logger, fixed_z, spent: list[float]):
    """train_variant's MLflow hooks (on_log, on_epoch), timed: the seconds each call takes go to `spent`."""
    from dcgan_lab.gan.sampling import sample_grid
    from dcgan_lab.training.loop import Hooks

    class Timed(Hooks):
        def on_log(self, steps, rows):
            started = time.perf_counter()
            logger.log_metrics(rows, steps)
            spent.append(time.perf_counter() - started)

        def on_epoch(self, epoch, step, g, timing):
            started = time.perf_counter()
            logger.log_metrics([{**timing, "epoch": epoch}], [step])
            logger.log_image(sample_grid(g, fixed_z).permute(1, 2, 0).numpy(), "samples", step)
            spent.append(time.perf_counter() - started)

    return Timed()


def bench(params, images: torch.Tensor, device: torch.device, variant_name: str, steps: int, repeats: int,
          verbose: bool = True) -> list[Row]:
    from dcgan_lab.training.loop import Hooks, fit
    from dcgan_lab.training.spec import RunSpec
    from dcgan_lab.tracking.runs import RunLogger

    t = params.train
    p = replace(params, train=replace(t, epochs=1, max_steps=None, eval_every=0))
    spec = RunSpec.resolve(p, variant_name, 0, images.shape[1])
    images = images[: steps * t.batch_size]  # one epoch = `steps` steps
    fixed_z = torch.randn(t.sample_grid, p.model.latent_dim, generator=torch.Generator().manual_seed(0)).to(device)
    run_params = spec.mlflow_params()

    def epoch_seconds(hooks: Hooks) -> float:
        started = time.perf_counter()
        fit(spec, images, device, hooks=hooks)
        return time.perf_counter() - started

    off, on, shares = [], [], []
    with (tempfile.TemporaryDirectory(prefix="bench-mlflow-") as root,  # a temp store, never the user's
          mock.patch.dict(os.environ, {"MLFLOW_TRACKING_URI": f"sqlite:///{Path(root) / 'mlflow.db'}"})):
        for r in range(repeats):
            for side in (("off", "on") if r % 2 == 0 else ("on", "off")):  # ABBA: drift lands on both
                if side == "off":
                    seconds = epoch_seconds(Hooks())
                    off.append(seconds)
                else:
                    logger = RunLogger.start(variant_name, r, run_params, {}, root=Path(root))
                    spent: list[float] = []
                    seconds = epoch_seconds(logging_hooks(logger, fixed_z, spent))
                    logger.finish()
                    on.append(seconds)
                    shares.append(sum(spent) / seconds)
                if verbose:
                    print(f"  logging {variant_name} repeat {r + 1}/{repeats} {side:3s}: {seconds:.2f} s "
                          f"({steps} steps)", flush=True)
    overhead = summary([100 * s for s in shares])
    return [
        Row.compare(f"logging on/off, {steps} steps (s)", "s", summary(on), summary(off), 1.02,
                    higher_is_better=False, paired=[a / b for a, b in zip(on, off)],
                    note="wall clock of one epoch of `steps` steps with train_variant's MLflow hooks vs none "
                         "(sqlite store in a temp dir)", steps=steps),
        Row("logging: time inside MLflow hooks", "%", overhead["median"], target="<= 2%",
            met=overhead["median"] <= 2.0, note=f"share of the 'on' run spent in on_log/on_epoch, "
            f"{steps // t.log_every} metric batches + 1 image; spread ±{overhead['spread_pct']:.0f}%",
            detail={"ours": overhead}),
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
