"""One training run as the train stage sees it: resume or start an MLflow run, train, write outputs.

`train_variant` trains one variant with one seed and writes the model directory (checkpoint, best
generator, sample grid, MLflow run id), the metrics summary and the per-step loss table, and logs it
all to one MLflow run. A resumable checkpoint of the same config resumes, in the same MLflow run.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Callable

import torch
from torchvision.utils import save_image

from ..core.device import resolve_device
from ..core.errors import ConfigError
from ..core.files import atomic_dir, atomic_write_text, ensure_writable
from ..core.paths import RunPaths
from ..core.progress import Progress
from ..data.splits import load_split, split_sha256
from ..gan.checkpoint import save_gan, save_generator
from ..gan.models import Generator
from ..gan.sampling import sample_grid
from ..tracking.runs import RunLogger
from .distributed import World
from .ema import standing_statistics
from .guard import Diverged
from .interrupt import Interrupted, StopOnSignal
from .batches import check_batch_size
from .loop import Hooks, fit, history_frame
from .spec import RunSpec
from .state import TrainState, load_checkpoint, resume_tag, save_checkpoint, standing_statistics_seed

# What the progress bar shows of the statistics read back (step.stat_names): D's outputs under bce and hinge,
# the critic's Wasserstein estimate and gradient penalty under wgan-gp.
POSTFIX = {"loss_d": "loss_d", "loss_g": "loss_g", "d_real": "D(x)", "d_fake": "D(G(z))", "wasserstein": "W",
           "gp": "gp"}
FIXED_NOISE_SEED = 0  # the sample grid's noise: the same for every variant and seed, to compare side by side


class RunHooks(Hooks):
    """The loop's hooks for the train stage: every step's statistics, epoch timings, sample grids and
    quick FIDs into the MLflow run; resumable checkpoints to disk."""

    def __init__(self, spec: RunSpec, logger: RunLogger, paths: RunPaths, tag: str, fixed_z: torch.Tensor,
                 quick_fid: Callable[[Generator], float] | None, images_per_step: int):
        self.spec, self.logger, self.paths, self.tag = spec, logger, paths, tag
        self.fixed_z, self.quick_fid, self.images_per_step, self.progress = fixed_z, quick_fid, images_per_step, None

    def on_start(self, step: int, total: int) -> None:
        self.progress = Progress(total, f"train {self.spec.variant} seed {self.spec.seed}", initial=step,
                                 images_per_unit=self.images_per_step)

    def on_log(self, steps: list[int], rows: list[dict[str, float]]) -> None:
        self.logger.log_metrics(rows, steps)
        last = rows[-1]  # read back anyway: the progress costs no host sync of its own
        self.progress.update(len(steps), **{label: last[k] for k, label in POSTFIX.items() if k in last})

    def on_eval(self, step: int, g: Generator) -> float | None:
        if self.quick_fid is None:
            return None
        fid = self.quick_fid(g)
        self.logger.log_metrics([{"fid_quick": fid}], [step])
        return fid

    def on_epoch(self, epoch: int, step: int, g: Generator, timing: dict[str, float]) -> None:
        self.logger.log_metrics([{**timing, "epoch": epoch}], [step])
        self.logger.log_image(sample_grid(g, self.fixed_z).permute(1, 2, 0).numpy(), "samples", step)

    def on_checkpoint(self, snapshot: dict) -> None:
        meta = {"mlflow_run_id": self.logger.run_id, "variant": self.spec.variant, "seed": self.spec.seed}
        save_checkpoint(self.paths.state, self.tag, snapshot, meta, self.spec.to_dict())

    def on_rollback(self, exc: Diverged, state: TrainState) -> None:
        self.progress.set(state.step)
        print(f"warning: {exc}; rolled back to step {state.step} with learning rates x{state.lr_scale:g} "
              f"(rollback {state.rollbacks} of {self.spec.train.max_rollbacks})", file=sys.stderr)
        self.logger.log_metrics([{"lr_scale": state.lr_scale, "rollbacks": state.rollbacks}], [state.step])
        self.logger.set_tags({"last_rollback": str(exc)})

    def close(self) -> None:
        if self.progress is not None:
            self.progress.close()


def train_variant(spec: RunSpec, data_dir: Path, paths: RunPaths, *,
                  quick_fid: Callable[[Generator], float] | None = None, world: World = World(),
                  tags: dict[str, str] | None = None) -> dict | None:
    """Train the run `spec` describes, write its outputs and log it to MLflow; returns the summary. With
    `quick_fid`, the generator with the lowest quick FID is kept too. `tags`: the MLflow run's provenance
    (tracking/provenance.py). Under torchrun every rank trains; rank 0 alone logs and writes (the others
    return None)."""
    check_launcher(spec, world)
    device = resolve_device(spec.train.device)
    if world.distributed and device.type == "cuda":
        device = torch.device("cuda", torch.cuda.current_device())  # this rank's GPU (distributed.init)
    ensure_writable(paths.model.path.parent, paths.train_metrics.parent, paths.losses.parent, paths.state.parent)
    images, labels = load_split(data_dir, "train", mmap=True)  # read on demand: it may not fit in memory
    # Checked before a checkpoint or a run is touched:
    check_batch_size(spec.train.batch_size, len(images), world, spec.train.d_steps)
    tag = resume_tag({**spec.resume_config(), "quick_fid": quick_fid is not None, "world_size": world.size},
                     spec.seed, split_sha256(data_dir, "train"))
    resume = load_checkpoint(paths.state, tag, quiet=not world.is_main)
    resume_state = resume and resume["state"]
    if not world.is_main:  # the other ranks train in step with rank 0 and write nothing
        with StopOnSignal() as stop:
            fit(spec, images, device, resume=resume_state, world=world, stop=stop, labels=labels)
        return None
    logger = _open_run(spec, resume, paths, tags or {})
    fixed_z = torch.randn(spec.train.sample_grid, spec.g.latent_dim,
                          generator=torch.Generator().manual_seed(FIXED_NOISE_SEED)).to(device)
    hooks = RunHooks(spec, logger, paths, tag, fixed_z, quick_fid, spec.images_per_step * world.size)
    try:
        with StopOnSignal() as stop:  # SIGTERM / Ctrl-C: a checkpoint at the current step, then Interrupted
            state = fit(spec, images, device, hooks=hooks, resume=resume_state, world=world, stop=stop,
                        labels=labels)
    except BaseException as exc:
        _record_failure(exc, logger, paths)
        raise
    finally:
        hooks.close()
    summary = train_summary(state, spec, device)
    write_outputs(state, summary, spec, fixed_z, paths, logger, saved_ema(state, spec, device))
    logger.finish()
    return summary


def _record_failure(exc: BaseException, logger: RunLogger, paths: RunPaths) -> None:
    """What the MLflow run says when training stops early; a rerun resumes from the last checkpoint."""
    if isinstance(exc, Diverged):  # the last good resumable checkpoint stays; no model outputs are written
        logger.fail(f"{exc} (last good checkpoint: {paths.state})")
    elif isinstance(exc, Interrupted):  # the MLflow run says how far it got; a rerun reopens it and goes on
        exc.checkpoint = paths.state
        logger.set_tags({"killed_at_step": exc.step, "failure_reason": f"{exc.signum.name} at step {exc.step}"})
        logger.finish("KILLED")
    elif isinstance(exc, KeyboardInterrupt):  # a second signal: no new checkpoint; a rerun resumes from the last
        logger.set_tags({"failure_reason": "interrupted twice: stopped without a new checkpoint"})
        logger.finish("KILLED")
    else:
        logger.fail(f"{type(exc).__name__}: {exc}")


def check_launcher(spec: RunSpec, world: World) -> None:
    """What the launcher must offer the run: DDP does not reduce the penalty's double-backward gradients."""
    if world.distributed and spec.train.loss == "wgan-gp":
        key = f"variants.{spec.variant}.loss" if spec.params["variant"]["loss"] else "train.loss"
        raise ConfigError(f"{key}: wgan-gp is not supported under torchrun (train.launcher); train it with "
                          "launcher: python")


def _open_run(spec: RunSpec, resume: dict | None, paths: RunPaths, tags: dict[str, str]) -> RunLogger:
    """A new MLflow run with every param and the run description, or, when resuming, the run the checkpoint
    was logging to."""
    if resume is None:
        logger = RunLogger.start(spec.variant, spec.seed, spec.mlflow_params(), tags)
        logger.log_text(spec.to_json(), paths.model.description.name)  # run.json, at the top of its artifacts
        return logger
    print(f"{spec.variant} seed {spec.seed}: resuming from step {resume['state']['step']} ({paths.state})",
          file=sys.stderr)
    return RunLogger.reopen(resume["meta"]["mlflow_run_id"], spec.variant, spec.seed, tags)


def train_summary(state: TrainState, spec: RunSpec, device: torch.device) -> dict:
    """metrics/train/<variant>/seed<k>.json: steps, time, speed and the last logging window's statistics."""
    history = history_frame(state)
    summary = {
        "variant": spec.variant,
        "seed": spec.seed,
        "steps": state.step,
        "epochs": len(state.timings),
        "batch_size": spec.train.batch_size,
        "device": str(device),
        "train_seconds": round(state.seconds, 2),
        "images_per_sec": round(sum(t["images_per_sec"] for t in state.timings) / max(1, len(state.timings)), 1),
        "rollbacks": state.rollbacks,
        # Means over the last logging window: one step's value is too noisy to compare.
        **{k: round(float(history[k].tail(spec.train.log_every).mean()), 4) for k in history.columns if k != "step"},
    }
    if state.best:
        summary.update(best_step=state.best["step"], best_fid_quick=round(state.best["score"], 4))
    return summary


def saved_ema(state: TrainState, spec: RunSpec, device: torch.device) -> Generator | None:
    """The EMA generator as the model directory keeps it, on the CPU: a copy whose batch-norm statistics are
    recomputed from its own samples (train.ema_bn_batches; 0 keeps the live G's). A copy, so the resumable
    checkpoint's EMA, and a run resumed from it, stay bitwise what training made."""
    if state.ema is None:
        return None
    g = copy.deepcopy(state.ema.model)
    if spec.train.ema_bn_batches:
        standing_statistics(g, spec.train.ema_bn_batches, spec.train.batch_size,
                            standing_statistics_seed(spec.seed), device)
    return g.cpu()


def write_outputs(state: TrainState, summary: dict, spec: RunSpec, fixed_z: torch.Tensor, paths: RunPaths,
                  logger: RunLogger, ema: Generator | None) -> None:
    """Write the model directory atomically (temp dir + rename), then the small metrics files. `ema`: the EMA
    generator to save (saved_ema), or None."""
    from ..gan.architecture import write_architecture

    meta = dict(variant=spec.variant, seed=spec.seed, pixel_range=list(spec.pixel_range), run=spec.to_dict())
    g = state.g.cpu()
    architecture = paths.model.architecture
    with atomic_dir(paths.model.path) as tmp:
        save_gan(tmp / paths.model.checkpoint.name, g, state.d.cpu(), ema=ema,
                 steps=summary["steps"], **meta)
        if state.best:
            best_g = Generator(g.spec)
            best_g.load_state_dict(state.best["state"])
            save_generator(tmp / paths.model.best.name, best_g, steps=state.best["step"],
                           fid_quick=state.best["score"], **meta)
        save_image(sample_grid(g, fixed_z.cpu()).float() / 255, tmp / paths.model.samples.name)
        (tmp / paths.model.description.name).write_text(spec.to_json())
        logger.save_run_file(tmp / paths.model.mlflow_run.name)
        drawn = write_architecture(g, state.d.cpu(), tmp / architecture.name)
    logger.log_artifact(paths.model.checkpoint, "checkpoint")
    logger.log_artifact(paths.model.samples, "samples")
    for file in drawn:
        logger.log_artifact(architecture / file.name, "architecture")
    atomic_write_text(paths.losses, history_frame(state).to_csv(index=False, float_format="%.5g"))
    atomic_write_text(paths.train_metrics, json.dumps(summary, indent=2) + "\n")
