"""The training loop around `step.train_step`: data order, noise, EMA, the divergence guard, and the
hooks that log, evaluate and checkpoint, each at its own schedule.

Losses stay on the device and are read back (one host sync) every `train.log_every` steps, and
before anything looks at the models (a quick FID, the end of an epoch, a checkpoint).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import torch

from ..core.config import Params, TrainConfig, VariantConfig
from ..gan.augment import make_augment
from ..gan.models import Discriminator, Generator, specs_from_params
from ..gan.pixels import to_pixels
from . import distributed, speed
from .batches import Shard
from .distributed import World
from .ema import EMA
from .guard import Diverged, DivergenceGuard
from .rollback import Rollback
from .speed import Precision
from .state import TrainState, cpu_copy
from .step import STAT_NAMES, train_step


@dataclass
class Hooks:
    """Called around the loop; all optional. Steps are 1-based counts of optimizer steps."""

    on_log: Callable[[list[int], list[dict[str, float]]], None] | None = None
    on_epoch: Callable[[int, int, Generator, dict[str, float]], None] | None = None  # (epoch, step, G, timing)
    # Every train.eval_every steps and at the end; returns a score (lower is better) or None.
    on_eval: Callable[[int, Generator], float | None] | None = None
    on_checkpoint: Callable[[dict], None] | None = None  # a snapshot (see `snapshot`)
    on_rollback: Callable[[Diverged, TrainState], None] | None = None  # after restoring the last checkpoint


@dataclass(frozen=True)
class Schedule:
    """Which steps end an epoch, read the losses back, evaluate and checkpoint."""

    steps_per_epoch: int
    total: int
    log_every: int
    eval_every: int  # 0: never
    checkpoint_every: int  # 0: at the end only

    def epoch_end(self, step: int) -> bool:
        return step % self.steps_per_epoch == 0 or step == self.total

    def evaluates(self, step: int) -> bool:
        return self.eval_every > 0 and (step % self.eval_every == 0 or step == self.total)

    def checkpoints(self, step: int) -> bool:
        return step == self.total or (self.checkpoint_every > 0 and step % self.checkpoint_every == 0)


class Clock:
    """Training time: per epoch (for images/s) and banked into `run.seconds` at each checkpoint."""

    def __init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        self.mark = self.epoch_started = time.perf_counter()
        self.epoch_steps = 0

    def since_mark(self) -> float:
        return time.perf_counter() - self.mark

    def bank(self, run: TrainState) -> None:
        run.seconds += self.since_mark()
        self.mark = time.perf_counter()

    def epoch(self, images_per_step: int) -> dict[str, float]:
        seconds = time.perf_counter() - self.epoch_started
        timing = {"epoch_seconds": seconds, "images_per_sec": self.epoch_steps * images_per_step / seconds}
        self.epoch_started, self.epoch_steps = time.perf_counter(), 0
        return timing


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
    """Fresh models, optimizers and random streams for one seed. Separate seeded streams (weight init, data
    order, noise, augmentation), so that changing one variant flag changes none of the others' draws: runs of
    two variants with the same seed see the same init where shapes match, the same batches and the same noise.
    Under torchrun every rank shares init and data order; rank r > 0 draws its own noise and augmentation."""
    t = params.train
    base = 1000 * seed

    def stream(k: int) -> int:
        return base + k if rank == 0 else int(np.random.SeedSequence([seed, k, rank]).generate_state(1)[0])

    # Weight init from streams of its own per network (k = 4, 5 for G; 6, 7 for D): every variant trained
    # with this seed starts from the same conv weights where shapes match. The global seed covers the
    # rest (spectral norm's first power-iteration vectors). DDP also broadcasts rank 0's weights.
    torch.manual_seed(base)
    g_spec, d_spec = specs_from_params(params, variant, channels)
    g = Generator(g_spec, init_seed=base + 4).to(device)
    d = Discriminator(d_spec, init_seed=base + 6).to(device)
    fused = device.type == "cuda" or None  # fused Adam (one kernel for all parameters) on CUDA
    return TrainState(
        g=g, d=d,
        opt_g=torch.optim.Adam(g.parameters(), lr=t.lr_g, betas=t.betas, fused=fused),
        opt_d=torch.optim.Adam(d.parameters(), lr=t.lr_d, betas=t.betas, fused=fused),
        ema=EMA(g, t.ema_decay) if t.ema_decay else None,
        data_gen=torch.Generator().manual_seed(base + 1),
        noise_gen=torch.Generator(device=device).manual_seed(stream(2)),
        aug_gen=torch.Generator(device=device).manual_seed(stream(3)),
        rank=rank,
    )


def snapshot(run: TrainState, prec: Precision, world: World) -> dict:
    """What a checkpoint or a rollback keeps: the state, every rank's random streams, the loss scalers."""
    state = run.state_dict()
    state["generators"] = distributed.gather(state["generators"], world)
    state["precision"] = prec.state_dict()
    return state


@dataclass
class StepModels:
    """What the step calls: DDP-wrapped under torchrun, compiled if asked (run.g / run.d are what is saved)."""

    g: torch.nn.Module
    d: torch.nn.Module
    d_pair: torch.nn.Module
    memory_format: torch.memory_format


def step_models(run: TrainState, t: TrainConfig, device: torch.device, world: World) -> StepModels:
    memory_format = torch.channels_last if speed.channels_last(t, device) else torch.contiguous_format
    run.g.to(memory_format=memory_format), run.d.to(memory_format=memory_format)
    g, d_pair = distributed.wrap(run.g, run.d, world, device, t.sync_batch_norm)
    g, d_pair, d = (speed.maybe_compile(m, t, device) for m in (g, d_pair, run.d))
    return StepModels(g, d, d_pair, memory_format)


@dataclass
class Setup:
    """Everything the loop works with, built once per `fit` call."""

    run: TrainState
    prec: Precision
    models: StepModels
    augment: Callable[[torch.Tensor], torch.Tensor]
    data: Shard
    sched: Schedule


def setup(params: Params, variant: VariantConfig, images: torch.Tensor, device: torch.device, seed: int,
          hooks: Hooks, resume: dict | None, world: World) -> Setup:
    t = params.train
    set_determinism(t.deterministic, device)
    run = new_state(params, variant, images.shape[1], device, seed, world.rank)
    prec = speed.precision(t, device)
    if resume is not None:
        run.load_state_dict(resume)
        prec.load_state_dict(resume.get("precision", {}))
    data = Shard(images, device, t.batch_size, t.stream, world)
    epochs = data.steps_per_epoch * t.epochs
    sched = Schedule(data.steps_per_epoch, epochs if t.max_steps is None else min(t.max_steps, epochs),
                     t.log_every, t.eval_every if hooks.on_eval else 0, t.checkpoint_every)
    augment = make_augment(variant.augment, params.data.pixel_range, run.aug_gen)
    return Setup(run, prec, step_models(run, t, device, world), augment, data, sched)


def fit(
    params: Params,
    variant: VariantConfig,
    images: torch.Tensor,  # (N, C, S, S) uint8 on the host, possibly memory-mapped
    device: torch.device,
    seed: int = 0,
    hooks: Hooks = Hooks(),
    resume: dict | None = None,  # a snapshot to continue from
    world: World = World(),  # under torchrun: this rank and the number of ranks
) -> TrainState:
    """Train one variant; returns the final state (models, EMA, per-step history, best generator).
    Under torchrun, call it on every rank; hooks are for rank 0 (the others pass none)."""
    t = params.train
    ctx = setup(params, variant, images, device, seed, hooks, resume, world)
    run, prec, models, sched = ctx.run, ctx.prec, ctx.models, ctx.sched
    guard, clock = DivergenceGuard(t.collapse_patience, t.saturation), Clock()
    rollback = Rollback(t.on_divergence == "rollback", t.max_rollbacks, snapshot(run, prec, world))
    pending: list[dict[str, torch.Tensor]] = []  # statistics of the steps not read back yet
    nan_injected = False
    run.g.train(), run.d.train()
    ctx.data.follow(run.order)  # a resumed run continues mid-epoch
    try:
        while run.step < sched.total:
            i = run.step % sched.steps_per_epoch
            if i == 0:  # a new epoch: a new permutation of the training set
                run.order = torch.randperm(images.shape[0], generator=run.data_gen)
                ctx.data.follow(run.order)
            if t.inject_nan_at == run.step + 1 and not nan_injected:  # testing the guard only
                nan_injected = _inject_nan(run.d)
            real = to_pixels(ctx.data.batch(i), params.data.pixel_range).contiguous(memory_format=models.memory_format)
            z = torch.randn(t.batch_size, run.g.spec.latent_dim, device=device, generator=run.noise_gen)
            pending.append(train_step(models.g, models.d, run.opt_g, run.opt_d, real, z, ctx.augment, t.loss,
                                      models.d_pair, prec))
            run.step += 1
            clock.epoch_steps += 1
            if run.ema:
                run.ema.update(run.g, run.step)
            step = run.step
            at_eval, at_epoch_end, at_checkpoint = sched.evaluates(step), sched.epoch_end(step), sched.checkpoints(step)
            # Read the losses back every log_every steps, and before anything looks at the models.
            if len(pending) == sched.log_every or at_eval or at_epoch_end or at_checkpoint:
                steps = list(range(step - len(pending) + 1, step + 1))
                rows, pending = _read_back(pending, world), []
                try:
                    guard.check(steps, rows)
                except Diverged as exc:
                    rollback.restore(exc, run, prec, run.seconds + clock.since_mark())  # or raise
                    ctx.data.follow(run.order)
                    guard.reset(), clock.restart()
                    if hooks.on_rollback:
                        hooks.on_rollback(exc, run)
                    continue
                run.history += [{"step": n, **row} for n, row in zip(steps, rows)]
                if hooks.on_log:
                    hooks.on_log(steps, rows)
            if at_eval:
                _evaluate(run, step, hooks.on_eval)
            if at_epoch_end:
                _end_epoch(run, clock, t.batch_size * world.size, sched, hooks.on_epoch)
            if at_checkpoint:
                clock.bank(run)
                distributed.check_in_sync(run.g, world)
                rollback.keep(snapshot(run, prec, world))
                if hooks.on_checkpoint:
                    hooks.on_checkpoint(rollback.last_good)
    finally:
        ctx.data.close()
    return run


def _inject_nan(d: torch.nn.Module) -> bool:
    """train.inject_nan_at: a NaN in D's first weight (once per `fit`), so the guard can be tested."""
    with torch.no_grad():
        next(d.parameters()).view(-1)[0] = float("nan")
    return True


def _end_epoch(run: TrainState, clock: Clock, images_per_step: int, sched: Schedule,
               on_epoch: Callable | None) -> None:
    timing = clock.epoch(images_per_step)
    run.timings.append(timing)
    if on_epoch:
        on_epoch(math.ceil(run.step / sched.steps_per_epoch), run.step, run.g, timing)


def _evaluate(run: TrainState, step: int, on_eval: Callable[[int, Generator], float | None]) -> None:
    """A quick score of G (lower is better); the best generator so far is kept in the run."""
    score = on_eval(step, run.g)
    run.g.train()
    if score is not None and (run.best is None or score < run.best["score"]):
        run.best = {"score": score, "step": step, "state": cpu_copy(run.g.state_dict())}


def _read_back(pending: list[dict[str, torch.Tensor]], world: World = World()) -> list[dict[str, float]]:
    """One host sync for many steps: stack to (steps, stats) on device, average over ranks, copy once."""
    table = torch.stack([torch.stack([s[k] for k in STAT_NAMES]) for s in pending]).float()
    table = distributed.mean(table, world).cpu().tolist()
    return [dict(zip(STAT_NAMES, row)) for row in table]


def history_frame(run: TrainState) -> pd.DataFrame:
    return pd.DataFrame(run.history, columns=["step", *STAT_NAMES])
