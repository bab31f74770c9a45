"""GAN training: the step, the loop around it, and the stage function that writes outputs.

The step is one screen: D update, then G update, returning tensors. Logging,
sampling and checkpointing happen around it, never inside it, and losses are
read back to the host only every `train.log_every` steps.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torchvision.utils import make_grid, save_image

from .atomic import atomic_dir, atomic_write_text, ensure_writable
from . import batches, distributed, speed
from .augment import Augment, make_augment
from .checkpoint import save_gan, save_generator
from .config import Params, VariantConfig, flatten, to_dict
from .data import load_split, split_sha256
from .distributed import RealFake, World
from .ema import EMA
from .errors import ConfigError
from .guard import Diverged, DivergenceGuard
from .models import Discriminator, DiscriminatorSpec, Generator, GeneratorSpec
from .paths import RunPaths
from .speed import FP32, Precision
from .state import TrainState, cpu_copy, load_checkpoint, run_tag, save_checkpoint

STAT_NAMES = ("loss_d", "loss_g", "d_real", "d_fake", "d_gen")
FIXED_NOISE_SEED = 0


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: 'cuda' was asked for but torch sees no CUDA device; use auto or cpu")
    return torch.device(name)


def gan_specs(params: Params, variant: VariantConfig, channels: int) -> tuple[GeneratorSpec, DiscriminatorSpec]:
    data, model = params.data, params.model
    g = GeneratorSpec(
        latent_dim=model.latent_dim,
        width=model.g_width,
        image_size=data.image_size,
        channels=channels,
        activation=variant.g_activation,
        batch_norm=variant.g_batch_norm,
        output="tanh" if data.pixel_range == (-1.0, 1.0) else "sigmoid",
    )
    d = DiscriminatorSpec(
        width=model.d_width,
        image_size=data.image_size,
        channels=channels,
        batch_norm=variant.d_batch_norm,
        spectral_norm=variant.d_spectral_norm,
        head=model.d_head,
    )
    return g, d


def to_pixels(images: torch.Tensor, pixel_range: tuple[float, float]) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float in pixel_range."""
    low, high = pixel_range
    return images.float().mul_((high - low) / 255.0).add_(low)


def to_uint8(images: torch.Tensor, pixel_range: tuple[float, float]) -> torch.Tensor:
    low, high = pixel_range
    return ((images - low) * (255.0 / (high - low))).round_().clamp_(0, 255).to(torch.uint8)


# --------------------------------------------------------------------------- losses


def d_loss(kind: str, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    if kind == "hinge":
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    # BCE on logits: real -> 1, fake -> 0
    return F.binary_cross_entropy_with_logits(
        real_logits, torch.ones_like(real_logits)
    ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def g_loss(kind: str, fake_logits: torch.Tensor) -> torch.Tensor:
    if kind == "hinge":
        return -fake_logits.mean()
    # Non-saturating: maximise log D(G(z)) rather than minimise log(1 - D(G(z))) (Goodfellow et al. 2014).
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


# --------------------------------------------------------------------------- the step


def train_step(
    g: Generator,
    d: Discriminator,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    real: torch.Tensor,  # (B, C, S, S) in the pixel range
    z: torch.Tensor,  # (B, latent_dim)
    augment: Augment,
    loss: str = "bce",
    d_pair: RealFake | None = None,  # D on (real, fake) in one call; DDP-wrapped under torchrun
    prec: Precision = FP32,  # autocast (and fp16 loss scaling), see speed.py
) -> dict[str, torch.Tensor]:
    # Phase 1, D: push D(real) up and D(G(z)) down. G's output is detached: no G gradient here.
    d.requires_grad_(True)
    with prec.autocast():
        fake = g(z)
        pair = d_pair if d_pair is not None else RealFake(d)
        real_logits, fake_logits = pair(augment(real), augment(fake.detach()))
        loss_d = d_loss(loss, real_logits, fake_logits)
    prec.step(loss_d, opt_d, prec.scaler_d)  # zero_grad, backward, step

    # Phase 2, G: make the just-updated D call the same fakes real. D's weights are not updated here,
    # so their gradients are not computed: backward through D gives G its gradient and skips D's
    # weight gradients (8% of the step on a 2-core CPU; G's gradient is bitwise the same).
    d.requires_grad_(False)
    with prec.autocast():
        gen_logits = d(augment(fake))
        loss_g = g_loss(loss, gen_logits)
    prec.step(loss_g, opt_g, prec.scaler_g)

    # Detached device tensors: the caller decides when to pay for a host sync.
    return {
        "loss_d": loss_d.detach(),
        "loss_g": loss_g.detach(),
        "d_real": torch.sigmoid(real_logits.detach()).mean(),  # D(x)
        "d_fake": torch.sigmoid(fake_logits.detach()).mean(),  # D(G(z)) before the D update
        "d_gen": torch.sigmoid(gen_logits.detach()).mean(),  # D(G(z)) after it
    }


# --------------------------------------------------------------------------- the loop


@dataclass
class Hooks:
    """Called around the loop; all optional. Steps are 1-based counts of optimizer steps."""

    on_log: Callable[[list[int], list[dict[str, float]]], None] | None = None
    on_epoch: Callable[[int, int, Generator, dict[str, float]], None] | None = None  # (epoch, step, G, timing)
    # Every train.eval_every steps and at the end; returns a score (lower is better) or None.
    on_eval: Callable[[int, Generator], float | None] | None = None
    on_checkpoint: Callable[[dict], None] | None = None  # a TrainState.state_dict() snapshot
    on_rollback: Callable[[Diverged, TrainState], None] | None = None  # after restoring the last checkpoint


def set_determinism(deterministic: bool | None, device: torch.device) -> bool:
    """Deterministic kernels where torch has them (null: on for CPU, off for CUDA). Returns the choice."""
    on = device.type != "cuda" if deterministic is None else deterministic
    if on and device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS first starts
    torch.use_deterministic_algorithms(on, warn_only=True)
    torch.backends.cudnn.deterministic = on
    torch.backends.cudnn.benchmark = not on and device.type == "cuda"
    return on


def new_state(params: Params, variant: VariantConfig, channels: int, device: torch.device, seed: int,
              rank: int = 0) -> TrainState:
    """Fresh models, optimizers and random streams for one seed. Separate seeded streams, so that
    changing augmentation does not change data order or noise, and no two seeds share a stream.
    Under torchrun every rank shares init and data order; rank r > 0 draws its own noise and augmentation."""
    t = params.train
    base = 1000 * seed

    def stream(k: int) -> int:
        return base + k if rank == 0 else int(np.random.SeedSequence([seed, k, rank]).generate_state(1)[0])

    torch.manual_seed(base)  # weight init (DDP also broadcasts rank 0's weights)
    g_spec, d_spec = gan_specs(params, variant, channels)
    g, d = Generator(g_spec).to(device), Discriminator(d_spec).to(device)
    return TrainState(
        g=g, d=d,
        # Fused Adam (one kernel for all parameters) on CUDA; the CPU keeps the reference implementation.
        opt_g=torch.optim.Adam(g.parameters(), lr=t.lr_g, betas=t.betas, fused=device.type == "cuda" or None),
        opt_d=torch.optim.Adam(d.parameters(), lr=t.lr_d, betas=t.betas, fused=device.type == "cuda" or None),
        ema=EMA(g, t.ema_decay) if t.ema_decay else None,
        data_gen=torch.Generator().manual_seed(base + 1),
        noise_gen=torch.Generator(device=device).manual_seed(stream(2)),
        aug_gen=torch.Generator(device=device).manual_seed(stream(3)),
        rank=rank,
    )


def fit(
    params: Params,
    variant: VariantConfig,
    images: torch.Tensor,  # (N, C, S, S) uint8 on the host, possibly memory-mapped
    device: torch.device,
    seed: int = 0,
    hooks: Hooks = Hooks(),
    resume: dict | None = None,  # a snapshot (see `snapshot` below) to continue from
    world: World = World(),  # under torchrun: this rank and the number of ranks
) -> TrainState:
    """Train one variant; returns the final state (models, EMA, per-step history, best generator).
    Under torchrun, call it on every rank; hooks are for rank 0 (the others pass none)."""
    t = params.train
    set_determinism(t.deterministic, device)
    run = new_state(params, variant, images.shape[1], device, seed, world.rank)
    if resume is not None:
        run.load_state_dict(resume)
    augment = make_augment(variant.augment, params.data.pixel_range, run.aug_gen)
    prec = speed.precision(t, device)
    if resume is not None:
        prec.load_state_dict(resume.get("precision", {}))
    memory_format = torch.channels_last if speed.channels_last(t, device) else torch.contiguous_format
    run.g.to(memory_format=memory_format), run.d.to(memory_format=memory_format)
    # What the step calls: DDP-wrapped under torchrun, compiled if asked; run.g / run.d are what gets saved.
    g_step, d_pair = distributed.wrap(run.g, run.d, world, device, t.sync_batch_norm)
    g_step, d_pair, d_step = (speed.maybe_compile(m, t, device) for m in (g_step, d_pair, run.d))

    def snapshot() -> dict:  # every rank's random streams, so each rank resumes its own
        state = run.state_dict()
        state["generators"] = distributed.gather(state["generators"], world)
        state["precision"] = prec.state_dict()
        return state

    n = images.shape[0]
    shard = n // world.size  # each rank trains on its share of every epoch's permutation
    if t.batch_size > shard:
        raise ConfigError(f"train.batch_size: {t.batch_size} is larger than the training set ({n} images"
                          + (f", {shard} per rank" if world.active else "") + ")")
    # The whole set on the device (batches are index gathers), or streamed from the host (train.stream).
    feed = batches.feeder(images, device, t.batch_size, t.stream, announce=world.is_main)
    steps_per_epoch = shard // t.batch_size
    total = steps_per_epoch * t.epochs if t.max_steps is None else min(t.max_steps, steps_per_epoch * t.epochs)

    guard = DivergenceGuard(t.collapse_patience, t.saturation)
    last_good = snapshot()  # what a rollback restores until the first checkpoint
    pending: list[dict[str, torch.Tensor]] = []
    nan_injected = False
    mark = epoch_started = time.perf_counter()
    epoch_steps = 0
    run.g.train(), run.d.train()
    def reorder() -> None:  # this rank's shard of the epoch's permutation, to the feeder
        if run.order is not None:
            feed.set_order(run.order[world.rank :: world.size][:shard])

    reorder()  # a resumed run continues mid-epoch
    while run.step < total:
        i = run.step % steps_per_epoch
        if i == 0:
            run.order = torch.randperm(n, generator=run.data_gen)
            reorder()
        if t.inject_nan_at == run.step + 1 and not nan_injected:  # testing the guard only
            nan_injected = True
            with torch.no_grad():
                next(run.d.parameters()).view(-1)[0] = float("nan")
        real = to_pixels(feed.batch(i), params.data.pixel_range)
        real = real.contiguous(memory_format=memory_format)
        z = torch.randn(t.batch_size, run.g.spec.latent_dim, device=device, generator=run.noise_gen)
        pending.append(train_step(g_step, d_step, run.opt_g, run.opt_d, real, z, augment, t.loss, d_pair, prec))
        run.step += 1
        epoch_steps += 1
        if run.ema:
            run.ema.update(run.g, run.step)

        step = run.step
        at_checkpoint = step == total or (t.checkpoint_every > 0 and step % t.checkpoint_every == 0)
        at_eval = hooks.on_eval is not None and t.eval_every > 0 and (step % t.eval_every == 0 or step == total)
        at_epoch_end = step % steps_per_epoch == 0 or step == total
        # Read the losses back every log_every steps, and before anything looks at the models.
        if len(pending) == t.log_every or at_checkpoint or at_eval or at_epoch_end:
            steps = list(range(step - len(pending) + 1, step + 1))
            rows, pending = _flush(pending, world), []
            try:
                guard.check(steps, rows)
            except Diverged as exc:
                if t.on_divergence != "rollback" or run.rollbacks >= t.max_rollbacks:
                    raise
                # Back to the last checkpoint; what the rollbacks changed (lrs, count, time) carries over.
                seconds, scale = run.seconds + time.perf_counter() - mark, run.lr_scale / 2
                rollbacks = run.rollbacks + 1
                run.load_state_dict(last_good)
                prec.load_state_dict(last_good["precision"])
                reorder()
                run.set_lr_scale(scale)
                run.rollbacks, run.seconds = rollbacks, seconds
                guard.reset()
                mark = epoch_started = time.perf_counter()
                epoch_steps = 0
                if hooks.on_rollback:
                    hooks.on_rollback(exc, run)
                continue
            run.history += [{"step": s, **r} for s, r in zip(steps, rows)]
            if hooks.on_log:
                hooks.on_log(steps, rows)
        if at_eval:
            score = hooks.on_eval(step, run.g)
            run.g.train()
            if score is not None and (run.best is None or score < run.best["score"]):
                run.best = {"score": score, "step": step, "state": cpu_copy(run.g.state_dict())}
        if at_epoch_end:
            seconds = time.perf_counter() - epoch_started
            timing = {"epoch_seconds": seconds, "images_per_sec": epoch_steps * t.batch_size * world.size / seconds}
            run.timings.append(timing)
            if hooks.on_epoch:
                hooks.on_epoch(math.ceil(step / steps_per_epoch), step, run.g, timing)
            epoch_started, epoch_steps = time.perf_counter(), 0
        if at_checkpoint:
            now = time.perf_counter()
            run.seconds, mark = run.seconds + now - mark, now
            distributed.check_in_sync(run.g, world)
            last_good = snapshot()
            if hooks.on_checkpoint:
                hooks.on_checkpoint(last_good)
    feed.close()
    return run


def history_frame(run: TrainState) -> pd.DataFrame:
    return pd.DataFrame(run.history, columns=["step", *STAT_NAMES])


def _flush(pending: list[dict[str, torch.Tensor]], world: World = World()) -> list[dict[str, float]]:
    """One host sync for many steps: stack to (steps, stats) on device, average over ranks, copy once."""
    table = torch.stack([torch.stack([s[k] for k in STAT_NAMES]) for s in pending]).float()
    table = distributed.mean(table, world).cpu().tolist()
    return [dict(zip(STAT_NAMES, row)) for row in table]


@torch.inference_mode()
def sample_grid(g: Generator, z: torch.Tensor, pixel_range: tuple[float, float]) -> torch.Tensor:
    """(3, H, W) uint8 grid of G(z), generated in eval mode."""
    was_training = g.training
    g.eval()
    images = to_uint8(g(z), pixel_range).cpu()
    g.train(was_training)
    return make_grid(images, nrow=int(len(z) ** 0.5), padding=2, pad_value=255)


# --------------------------------------------------------------------------- stage


def train_variant(
    params: Params,
    variant_name: str,
    seed: int,
    data_dir: Path,
    paths: RunPaths,
    quick_fid: Callable[[Generator], float] | None = None,
    world: World = World(),
) -> dict | None:
    """Train one variant with one seed and write checkpoint, sample grid, metrics and loss table;
    log it all to one MLflow run. A resumable checkpoint of this config in `paths.state` is resumed,
    in the same MLflow run. With `quick_fid`, the generator with the lowest quick FID is kept too.
    Under torchrun every rank trains; rank 0 alone logs and writes (the others return None)."""
    from .tracking import RunLogger

    variant = params.variant(variant_name)
    device = resolve_device(params.train.device)
    if world.active and device.type == "cuda":
        device = torch.device("cuda", torch.cuda.current_device())  # this rank's GPU (distributed.init)
    ensure_writable(paths.model_dir.parent, paths.train_metrics.parent, paths.losses.parent, paths.state.parent)
    images, _ = load_split(data_dir, "train", mmap=True)  # read on demand: it may not fit in memory
    # The same noise for every variant and seed, so grids can be compared side by side.
    fixed_z = torch.randn(
        params.train.sample_grid, params.model.latent_dim, generator=torch.Generator().manual_seed(FIXED_NOISE_SEED)
    ).to(device)

    config = {k: v for k, v in to_dict(params).items() if k in ("data", "model", "train")}
    # train.stream changes where batches are gathered, not which: a run may resume with the other setting.
    same_run = {**config, "train": {k: v for k, v in config["train"].items() if k != "stream"}}
    tag = run_tag({**same_run, "variant": to_dict(variant), "quick_fid": quick_fid is not None,
                   "world_size": world.size}, seed, split_sha256(data_dir, "train"))
    resume = load_checkpoint(paths.state, tag, quiet=not world.is_main)
    if not world.is_main:  # the other ranks train in step with rank 0 and write nothing
        fit(params, variant, images, device, seed, Hooks(), resume=resume and resume["state"], world=world)
        return None
    if resume is None:
        run_params = flatten(config)
        run_params.update(flatten(to_dict(variant), "variant"))
        run_params.update({"variant.name": variant_name, "seed": seed})
        logger = RunLogger.start(variant_name, seed, run_params)
    else:
        print(f"{variant_name} seed {seed}: resuming from step {resume['state']['step']} ({paths.state})",
              file=sys.stderr)
        logger = RunLogger.reopen(resume["meta"]["mlflow_run_id"], variant_name, seed)

    def on_eval(step, g):
        fid = quick_fid(g)
        logger.log_metrics([{"fid_quick": fid}], [step])
        return fid

    def on_epoch(epoch, step, g, timing):
        logger.log_metrics([{**timing, "epoch": epoch}], [step])
        grid = sample_grid(g, fixed_z, params.data.pixel_range)
        logger.log_image(grid.permute(1, 2, 0).numpy(), "samples", step)

    def on_checkpoint(snapshot):
        save_checkpoint(paths.state, tag, snapshot,
                        {"mlflow_run_id": logger.run_id, "variant": variant_name, "seed": seed})

    def on_rollback(exc, run):
        print(f"warning: {exc}; rolled back to step {run.step} with learning rates x{run.lr_scale:g} "
              f"(rollback {run.rollbacks} of {params.train.max_rollbacks})", file=sys.stderr)
        logger.log_metrics([{"lr_scale": run.lr_scale, "rollbacks": run.rollbacks}], [run.step])
        logger.set_tags({"last_rollback": str(exc)})

    hooks = Hooks(on_log=lambda steps, rows: logger.log_metrics(rows, steps), on_epoch=on_epoch, on_eval=on_eval if quick_fid else None,
                  on_checkpoint=on_checkpoint, on_rollback=on_rollback)
    try:
        run = fit(params, variant, images, device, seed, hooks, resume=resume and resume["state"], world=world)
    except Diverged as exc:
        # The last good resumable checkpoint stays; no model outputs are written.
        logger.fail(f"{exc} (last good checkpoint: {paths.state})")
        raise
    except BaseException as exc:
        logger.fail(f"{type(exc).__name__}: {exc}")
        raise

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
        **{k: round(float(history[k].tail(params.train.log_every).mean()), 4) for k in STAT_NAMES},
    }
    if run.best:
        summary.update(best_step=run.best["step"], best_fid_quick=round(run.best["score"], 4))
    _write_outputs(run, history, summary, params, fixed_z, paths, logger)
    logger.finish()
    return summary


def _write_outputs(run: TrainState, history, summary, params, fixed_z, paths: RunPaths, logger) -> None:
    """Write the model directory atomically (temp dir + rename), then the small metrics files."""
    meta = dict(variant=summary["variant"], seed=summary["seed"], pixel_range=list(params.data.pixel_range),
                params=to_dict(params))
    g = run.g.cpu()
    with atomic_dir(paths.model_dir) as tmp:
        save_gan(tmp / "checkpoint.pt", g, run.d.cpu(), ema=run.ema and run.ema.model.cpu(),
                 steps=summary["steps"], **meta)
        if run.best:
            best_g = Generator(g.spec)
            best_g.load_state_dict(run.best["state"])
            save_generator(tmp / "best.pt", best_g, steps=run.best["step"], fid_quick=run.best["score"], **meta)
        grid = sample_grid(g, fixed_z.cpu(), params.data.pixel_range)
        save_image(grid.float() / 255, tmp / "samples.png")
        logger.save_run_file(tmp / "mlflow_run.json")
    logger.log_artifact(paths.checkpoint, "checkpoint")
    logger.log_artifact(paths.samples, "samples")
    history.to_csv(paths.losses, index=False, float_format="%.5g")
    atomic_write_text(paths.train_metrics, json.dumps(summary, indent=2) + "\n")
