"""One training run as the train stage sees it: resume or start an MLflow run, train, write outputs.

`train_variant` trains one variant with one seed and writes the model directory (checkpoint, best
generator, sample grid, MLflow run id), the metrics summary and the per-step loss table, and logs it
all to one MLflow run. A resumable checkpoint of the same config resumes, in the same MLflow run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable

import torch
from torchvision.utils import save_image

from ..core.config import Params, VariantConfig
from ..core.errors import ConfigError
from ..core.device import resolve_device
from ..core.files import atomic_dir, atomic_write_text, ensure_writable
from ..core.paths import RunPaths
from ..core.progress import Progress
from ..core.params import flatten, to_dict
from ..data.splits import load_split, read_manifest, split_sha256
from ..gan.checkpoint import save_gan, save_generator
from ..gan.models import Generator
from ..gan.sampling import sample_grid
from ..tracking.runs import RunLogger
from .distributed import World
from .guard import Diverged
from .interrupt import Interrupted, StopOnSignal
from .batches import check_batch_size
from .loop import Hooks, fit, history_frame
from .state import TrainState, load_checkpoint, run_tag, save_checkpoint

# What the progress bar shows of the statistics read back (step.stat_names): D's outputs under bce and hinge,
# the critic's Wasserstein estimate and gradient penalty under wgan-gp.
POSTFIX = {"loss_d": "loss_d", "loss_g": "loss_g", "d_real": "D(x)", "d_fake": "D(G(z))", "wasserstein": "W",
           "gp": "gp"}
FIXED_NOISE_SEED = 0  # the sample grid's noise: the same for every variant and seed, to compare side by side


class RunHooks:
    """The loop's hooks for the train stage: every step's statistics, epoch timings, sample grids and
    quick FIDs into the MLflow run; resumable checkpoints to disk."""

    def __init__(self, logger: RunLogger, paths: RunPaths, tag: str, meta: dict, fixed_z: torch.Tensor,
                 quick_fid: Callable[[Generator], float] | None, max_rollbacks: int, images_per_step: int):
        self.logger, self.paths, self.tag, self.meta = logger, paths, tag, meta
        self.fixed_z, self.quick_fid, self.max_rollbacks = fixed_z, quick_fid, max_rollbacks
        self.images_per_step, self.progress = images_per_step, None

    def hooks(self) -> Hooks:
        return Hooks(on_start=self.on_start, on_log=self.on_log, on_epoch=self.on_epoch,
                     on_eval=self.on_eval if self.quick_fid else None, on_checkpoint=self.on_checkpoint,
                     on_rollback=self.on_rollback)

    def on_start(self, step: int, total: int) -> None:
        self.progress = Progress(total, f"train {self.meta['variant']} seed {self.meta['seed']}", initial=step,
                                 images_per_unit=self.images_per_step)

    def on_log(self, steps: list[int], rows: list[dict[str, float]]) -> None:
        self.logger.log_metrics(rows, steps)
        last = rows[-1]  # read back anyway: the progress costs no host sync of its own
        self.progress.update(len(steps), **{label: last[k] for k, label in POSTFIX.items() if k in last})

    def on_eval(self, step: int, g: Generator) -> float:
        fid = self.quick_fid(g)
        self.logger.log_metrics([{"fid_quick": fid}], [step])
        return fid

    def on_epoch(self, epoch: int, step: int, g: Generator, timing: dict[str, float]) -> None:
        self.logger.log_metrics([{**timing, "epoch": epoch}], [step])
        self.logger.log_image(sample_grid(g, self.fixed_z).permute(1, 2, 0).numpy(), "samples", step)

    def on_checkpoint(self, snapshot: dict) -> None:
        save_checkpoint(self.paths.state, self.tag, snapshot, {"mlflow_run_id": self.logger.run_id, **self.meta})

    def close(self) -> None:
        if self.progress is not None:
            self.progress.close()

    def on_rollback(self, exc: Diverged, run: TrainState) -> None:
        self.progress.set(run.step)
        print(f"warning: {exc}; rolled back to step {run.step} with learning rates x{run.lr_scale:g} "
              f"(rollback {run.rollbacks} of {self.max_rollbacks})", file=sys.stderr)
        self.logger.log_metrics([{"lr_scale": run.lr_scale, "rollbacks": run.rollbacks}], [run.step])
        self.logger.set_tags({"last_rollback": str(exc)})


def train_variant(
    params: Params,
    variant_name: str,
    seed: int,
    data_dir: Path,
    paths: RunPaths,
    quick_fid: Callable[[Generator], float] | None = None,
    world: World = World(),
    tags: dict[str, str] | None = None,  # provenance of the MLflow run (tracking/provenance.py)
) -> dict | None:
    """Train one variant with one seed, write its outputs and log it to MLflow; returns the summary.
    With `quick_fid`, the generator with the lowest quick FID is kept too. Under torchrun every rank
    trains; rank 0 alone logs and writes (the others return None)."""
    variant = params.variant(variant_name)
    device = resolve_device(params.train.device)
    if world.active and device.type == "cuda":
        device = torch.device("cuda", torch.cuda.current_device())  # this rank's GPU (distributed.init)
    ensure_writable(paths.model.path.parent, paths.train_metrics.parent, paths.losses.parent, paths.state.parent)
    images, labels = load_split(data_dir, "train", mmap=True)  # read on demand: it may not fit in memory
    # Checked before a checkpoint or a run is touched:
    t = params.train_for(variant)
    check_batch_size(t.batch_size, len(images), world, t.d_steps)
    n_classes = check_variant_fits(variant_name, variant, t.loss, read_manifest(data_dir), world)
    tag = _tag(params, variant, seed, quick_fid is not None, world, split_sha256(data_dir, "train"))
    resume = load_checkpoint(paths.state, tag, quiet=not world.is_main)
    resume_state = resume and resume["state"]
    if not world.is_main:  # the other ranks train in step with rank 0 and write nothing
        with StopOnSignal() as stop:
            fit(params, variant, images, device, seed, Hooks(), resume=resume_state, world=world, stop=stop,
                labels=labels, n_classes=n_classes)
        return None
    logger = _open_run(params, variant_name, variant, seed, resume, paths, tags or {})
    fixed_z = torch.randn(params.train.sample_grid, params.model.latent_dim,
                          generator=torch.Generator().manual_seed(FIXED_NOISE_SEED)).to(device)
    hooks = RunHooks(logger, paths, tag, {"variant": variant_name, "seed": seed}, fixed_z, quick_fid,
                     params.train.max_rollbacks, t.batch_size * t.d_steps * world.size)  # real images per step
    try:
        with StopOnSignal() as stop:  # SIGTERM / Ctrl-C: a checkpoint at the current step, then Interrupted
            run = fit(params, variant, images, device, seed, hooks.hooks(), resume_state, world, stop, labels,
                      n_classes)
    except Diverged as exc:  # the last good resumable checkpoint stays; no model outputs are written
        logger.fail(f"{exc} (last good checkpoint: {paths.state})")
        raise
    except Interrupted as exc:  # the MLflow run says how far it got; a rerun reopens it and goes on
        exc.checkpoint = paths.state
        logger.set_tags({"killed_at_step": exc.step, "failure_reason": f"{exc.signum.name} at step {exc.step}"})
        logger.finish("KILLED")
        raise
    except KeyboardInterrupt:  # a second signal: no new checkpoint; a rerun resumes from the last one
        logger.set_tags({"failure_reason": "interrupted twice: stopped without a new checkpoint"})
        logger.finish("KILLED")
        raise
    except BaseException as exc:
        logger.fail(f"{type(exc).__name__}: {exc}")
        raise
    finally:
        hooks.close()
    summary = summarize(run, params, variant_name, seed, device)
    write_outputs(run, summary, params, fixed_z, paths, logger)
    logger.finish()
    return summary


def check_variant_fits(name: str, variant: VariantConfig, loss: str, manifest: dict, world: World) -> int:
    """What the data set and the launcher must offer a variant; returns the data set's number of classes."""
    classes = manifest["classes"]
    if variant.conditional and len(classes) < 2:
        raise ConfigError(f"variants.{name}.conditional: true needs a labelled data set; {manifest['dataset']} "
                          f"was prepared with {len(classes)} class ({', '.join(map(str, classes)) or 'none'}): "
                          "give `folder` data one subfolder per class, or set conditional: false")
    if world.active and loss == "wgan-gp":  # DDP does not reduce the penalty's double-backward gradients
        raise ConfigError(f"{f'variants.{name}.loss' if variant.loss else 'train.loss'}: wgan-gp is not supported "
                          f"under torchrun (train.launcher); train it with launcher: python")
    return len(classes)


def _tag(params: Params, variant: VariantConfig, seed: int, selects_best: bool, world: World,
         data_sha256: str) -> str:
    """The resume tag: what must match for a checkpoint to be continued (see state.run_tag)."""
    config = {k: v for k, v in to_dict(params).items() if k in ("data", "model", "train")}
    # train.stream changes where batches are gathered, not which: a run may resume with the other setting.
    config["train"].pop("stream")
    return run_tag({**config, "variant": to_dict(variant), "quick_fid": selects_best, "world_size": world.size},
                   seed, data_sha256)


def _open_run(params: Params, variant_name: str, variant: VariantConfig, seed: int, resume: dict | None,
              paths: RunPaths, tags: dict[str, str]) -> RunLogger:
    """A new MLflow run with every param, or, when resuming, the run the checkpoint was logging to."""
    if resume is None:
        config = {k: v for k, v in to_dict(params).items() if k in ("data", "model", "train")}
        run_params = {**flatten(config), **flatten(to_dict(variant), "variant"), "variant.name": variant_name,
                      "seed": seed}
        return RunLogger.start(variant_name, seed, run_params, tags)
    print(f"{variant_name} seed {seed}: resuming from step {resume['state']['step']} ({paths.state})",
          file=sys.stderr)
    return RunLogger.reopen(resume["meta"]["mlflow_run_id"], variant_name, seed, tags)


def summarize(run: TrainState, params: Params, variant_name: str, seed: int, device: torch.device) -> dict:
    """metrics/train/<variant>/seed<k>.json: steps, time, speed and the last logging window's statistics."""
    history = history_frame(run)
    summary = {
        "variant": variant_name,
        "seed": seed,
        "steps": run.step,
        "epochs": len(run.timings),
        "batch_size": params.train.batch_size,
        "device": str(device),
        "train_seconds": round(run.seconds, 2),
        "images_per_sec": round(sum(t["images_per_sec"] for t in run.timings) / max(1, len(run.timings)), 1),
        "rollbacks": run.rollbacks,
        # Means over the last logging window: one step's value is too noisy to compare.
        **{k: round(float(history[k].tail(params.train.log_every).mean()), 4) for k in history.columns if k != "step"},
    }
    if run.best:
        summary.update(best_step=run.best["step"], best_fid_quick=round(run.best["score"], 4))
    return summary


def write_outputs(run: TrainState, summary: dict, params: Params, fixed_z: torch.Tensor, paths: RunPaths,
                  logger: RunLogger) -> None:
    """Write the model directory atomically (temp dir + rename), then the small metrics files."""
    from ..gan.architecture import write_architecture

    meta = dict(variant=summary["variant"], seed=summary["seed"], pixel_range=list(params.data.pixel_range),
                params=to_dict(params))
    g = run.g.cpu()
    architecture = paths.model.architecture
    with atomic_dir(paths.model.path) as tmp:
        save_gan(tmp / paths.model.checkpoint.name, g, run.d.cpu(), ema=run.ema and run.ema.model.cpu(),
                 steps=summary["steps"], **meta)
        if run.best:
            best_g = Generator(g.spec)
            best_g.load_state_dict(run.best["state"])
            save_generator(tmp / paths.model.best.name, best_g, steps=run.best["step"],
                           fid_quick=run.best["score"], **meta)
        save_image(sample_grid(g, fixed_z.cpu()).float() / 255, tmp / paths.model.samples.name)
        logger.save_run_file(tmp / paths.model.mlflow_run.name)
        drawn = write_architecture(g, run.d.cpu(), tmp / architecture.name)
    logger.log_artifact(paths.model.checkpoint, "checkpoint")
    logger.log_artifact(paths.model.samples, "samples")
    for file in drawn:
        logger.log_artifact(architecture / file.name, "architecture")
    atomic_write_text(paths.losses, history_frame(run).to_csv(index=False, float_format="%.5g"))
    atomic_write_text(paths.train_metrics, json.dumps(summary, indent=2) + "\n")
