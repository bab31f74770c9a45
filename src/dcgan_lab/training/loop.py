"""The training loop around `step.train_step`: data order, noise, EMA, the divergence guard, and the
hooks that log, evaluate and checkpoint, each at its own schedule.

Losses stay on the device and are read back (one host sync) every `train.log_every` steps, and
before anything looks at the models (a quick FID, the end of an epoch, a checkpoint).
"""

from __future__ import annotations

import math
import os
import signal
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
from .interrupt import Interrupted
from .rollback import Rollback
from .schedule import Clock, Schedule
from .speed import Precision
from .state import TrainState, cpu_copy
from .step import Batch, stat_names, train_step


@dataclass
class Hooks:
    """Called around the loop; all optional. Steps are 1-based counts of optimizer steps."""

    on_start: Callable[[int, int], None] | None = None  # (first step, total steps), before the first step
    on_log: Callable[[list[int], list[dict[str, float]]], None] | None = None
    on_epoch: Callable[[int, int, Generator, dict[str, float]], None] | None = None  # (epoch, step, G, timing)
    # Every train.eval_every steps and at the end; returns a score (lower is better) or None.
    on_eval: Callable[[int, Generator], float | None] | None = None
    on_checkpoint: Callable[[dict], None] | None = None  # a snapshot (see `snapshot`)
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
              rank: int = 0, n_classes: int = 0) -> TrainState:
    """Fresh models, optimizers and random streams for one seed. Separate seeded streams (weight init, data
    order, noise, augmentation), so that changing one variant flag changes none of the others' draws: runs of
    two variants with the same seed see the same init where shapes match, the same batches and the same noise.
    Under torchrun every rank shares init and data order; rank r > 0 draws its own noise and augmentation."""
    t = params.train_for(variant)
    base = 1000 * seed

    def stream(k: int) -> int:
        return base + k if rank == 0 else int(np.random.SeedSequence([seed, k, rank]).generate_state(1)[0])

    # Weight init from streams of its own per network (k = 4, 5 for G; 6, 7 for D): every variant trained
    # with this seed starts from the same conv weights where shapes match. The global seed covers the
    # rest (spectral norm's first power-iteration vectors). DDP also broadcasts rank 0's weights.
    torch.manual_seed(base)
    g_spec, d_spec = specs_from_params(params, variant, channels, n_classes)
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


class Loop:
    """Everything one `fit` call works with, and the pieces of its loop. `fit` below reads top to bottom."""

    def __init__(self, params: Params, variant: VariantConfig, images: torch.Tensor, device: torch.device,
                 seed: int, hooks: Hooks, resume: dict | None, world: World,
                 stop: Callable[[], signal.Signals | None] | None, labels: torch.Tensor | None, n_classes: int):
        t = self.t = params.train_for(variant)  # the variant's own loss, d_steps and betas where it sets them
        set_determinism(t.deterministic, device)
        self.run = new_state(params, variant, images.shape[1], device, seed, world.rank, n_classes)
        self.prec = speed.precision(t, device)
        if resume is not None:
            self.run.load_state_dict(resume)
            self.prec.load_state_dict(resume.get("precision", {}))
        conditional = self.run.g.spec.n_classes > 0
        self.data = Shard(images, device, t.batch_size, t.stream, world, labels if conditional else None, t.d_steps)
        # A conditional G is asked for labels drawn from the training set's class distribution.
        self.class_freq = torch.bincount(labels, minlength=n_classes).float().to(device) if conditional else None
        steps_per_epoch = self.data.batches_per_epoch // t.d_steps  # a step is one G update: d_steps batches
        epochs = steps_per_epoch * t.epochs
        self.sched = Schedule(steps_per_epoch, epochs if t.max_steps is None else min(t.max_steps, epochs),
                              t.log_every, t.eval_every if hooks.on_eval else 0, t.checkpoint_every)
        self.augment = make_augment(variant.augment, params.data.pixel_range, self.run.aug_gen)
        self.models = step_models(self.run, t, device, world)
        self.pixel_range, self.n_images, self.device = params.data.pixel_range, images.shape[0], device
        self.hooks, self.world, self.stop = hooks, world, stop
        # D(x) and D(G(z)) are probabilities only under bce: the saturation check watches bce runs alone.
        self.guard = DivergenceGuard(t.collapse_patience if t.loss == "bce" else 0, t.saturation)
        self.clock, self.stat_names = Clock(), stat_names(t.loss)
        self.rollback = Rollback(t.on_divergence == "rollback", t.max_rollbacks, snapshot(self.run, self.prec, world))
        self.pending: list[dict[str, torch.Tensor]] = []  # statistics of the steps not read back yet
        self.nan_injected = False
        self.run.g.train(), self.run.d.train()
        self.data.follow(self.run.order)  # a resumed run continues mid-epoch

    def train_one_step(self) -> None:
        """The next d_steps batches, d_steps D updates and one G update (step.py), the EMA; the statistics stay
        on the device."""
        run, t, models = self.run, self.t, self.models
        i = run.step % self.sched.steps_per_epoch
        if i == 0:  # a new epoch: a new permutation of the training set
            run.order = torch.randperm(self.n_images, generator=run.data_gen)
            self.data.follow(run.order)
        if t.inject_nan_at == run.step + 1 and not self.nan_injected:  # testing the guard only
            self.nan_injected = _inject_nan(run.d)
        batches = [self.batch(i * t.d_steps + k) for k in range(t.d_steps)]
        self.pending.append(train_step(models.g, models.d, run.opt_g, run.opt_d, batches, self.augment, t.loss,
                                       models.d_pair, self.prec, t.gp_weight))
        run.step += 1
        self.clock.epoch_steps += 1
        if run.ema:
            run.ema.update(run.g, run.step)

    def batch(self, j: int) -> Batch:
        """Batch j of the epoch and its random inputs, drawn from the run's noise stream in a fixed order
        (noise, then fake labels, then mixing weights), so an unconditional bce run draws noise alone."""
        run, t, device = self.run, self.t, self.device
        real = to_pixels(self.data.batch(j), self.pixel_range).contiguous(memory_format=self.models.memory_format)
        z = torch.randn(t.batch_size, run.g.spec.latent_dim, device=device, generator=run.noise_gen)
        batch = Batch(real, z)
        if self.class_freq is not None:
            batch.real_labels = self.data.labels(j)
            batch.fake_labels = torch.multinomial(self.class_freq, t.batch_size, replacement=True,
                                                  generator=run.noise_gen)
        if t.loss == "wgan-gp":
            batch.mix = torch.rand(t.batch_size, 1, 1, 1, device=device, generator=run.noise_gen)
        return batch

    def reads_back(self) -> bool:
        """Every log_every steps, and before anything looks at the models (eval, epoch end, checkpoint)."""
        step = self.run.step
        return (len(self.pending) == self.sched.log_every or self.sched.evaluates(step)
                or self.sched.epoch_end(step) or self.sched.checkpoints(step))

    def read_back(self) -> bool:
        """One host sync for the pending steps, checked by the divergence guard, kept and handed to on_log.
        False when the guard fired and the run was rolled back (the caller goes on from there)."""
        step = self.run.step
        steps = list(range(step - len(self.pending) + 1, step + 1))
        rows, self.pending = _read_back(self.pending, self.stat_names, self.world), []
        try:
            self.guard.check(steps, rows)
        except Diverged as exc:
            self.rollback.restore(exc, self.run, self.prec, self.run.seconds + self.clock.since_mark())  # or raise
            self.data.follow(self.run.order)
            self.guard.reset(), self.clock.restart()
            if self.hooks.on_rollback:
                self.hooks.on_rollback(exc, self.run)
            return False
        self.run.history += [{"step": n, **row} for n, row in zip(steps, rows)]
        if self.hooks.on_log:
            self.hooks.on_log(steps, rows)
        return True

    def evaluate(self) -> None:
        """A quick score of G (lower is better); the best generator so far is kept in the run."""
        run = self.run
        score = self.hooks.on_eval(run.step, run.g)
        run.g.train()
        if score is not None and (run.best is None or score < run.best["score"]):
            run.best = {"score": score, "step": run.step, "state": cpu_copy(run.g.state_dict())}

    def end_epoch(self) -> None:
        run = self.run
        timing = self.clock.epoch(self.t.batch_size * self.t.d_steps * self.world.size)  # real images a step reads
        run.timings.append(timing)
        if self.hooks.on_epoch:
            self.hooks.on_epoch(math.ceil(run.step / self.sched.steps_per_epoch), run.step, run.g, timing)

    def checkpoint(self) -> None:
        """A resumable snapshot: what a rollback returns to, and (on_checkpoint) what a rerun resumes from."""
        self.clock.bank(self.run)
        distributed.check_in_sync(self.run.g, self.world)
        self.rollback.keep(snapshot(self.run, self.prec, self.world))
        if self.hooks.on_checkpoint:
            self.hooks.on_checkpoint(self.rollback.last_good)

    def stop_requested(self) -> signal.Signals | None:
        """A signal asked the run to stop (interrupt.py). One process polls it every step (no host sync: a
        Python flag); under torchrun the ranks agree on it where they sync anyway, at the read-backs."""
        if self.stop is None:
            return None
        if not self.world.active:
            return self.stop()
        if self.pending:  # only right after a read-back
            return None
        return distributed.any_signal(self.stop(), self.world, self.device)

    def interrupt(self, signum: signal.Signals) -> None:
        """Stop here: read the pending steps back, write a checkpoint at this step, raise Interrupted."""
        if self.pending and not self.read_back():
            return  # the guard rolled the run back: the checkpoint below is the restored state
        self.checkpoint()
        raise Interrupted(self.run.step, signum)


def fit(
    params: Params,
    variant: VariantConfig,
    images: torch.Tensor,  # (N, C, S, S) uint8 on the host, possibly memory-mapped
    device: torch.device,
    seed: int = 0,
    hooks: Hooks = Hooks(),
    resume: dict | None = None,  # a snapshot to continue from
    world: World = World(),  # under torchrun: this rank and the number of ranks
    stop: Callable[[], signal.Signals | None] | None = None,  # polled each step, e.g. interrupt.StopOnSignal
    labels: torch.Tensor | None = None,  # (N,) int64: the images' classes (conditional variants use them)
    n_classes: int = 0,  # of the data set (its manifest), for a conditional variant
) -> TrainState:
    """Train one variant; returns the final state (models, EMA, per-step history, best generator).
    Under torchrun, call it on every rank; hooks are for rank 0 (the others pass none). When `stop` returns
    a signal, a checkpoint is written at that step and Interrupted is raised."""
    loop = Loop(params, variant, images, device, seed, hooks, resume, world, stop, labels, n_classes)
    run, sched = loop.run, loop.sched
    if hooks.on_start:
        hooks.on_start(run.step, sched.total)
    try:
        while run.step < sched.total:
            loop.train_one_step()
            if loop.reads_back() and not loop.read_back():
                continue  # rolled back to the last checkpoint
            if sched.evaluates(run.step):
                loop.evaluate()
            if sched.epoch_end(run.step):
                loop.end_epoch()
            if sched.checkpoints(run.step):
                loop.checkpoint()
            if (signum := loop.stop_requested()) is not None:
                loop.interrupt(signum)
    finally:
        loop.data.close()
    return run


def _inject_nan(d: torch.nn.Module) -> bool:
    """train.inject_nan_at: a NaN in D's first weight (once per `fit`), so the guard can be tested."""
    with torch.no_grad():
        next(d.parameters()).view(-1)[0] = float("nan")
    return True


def _read_back(pending: list[dict[str, torch.Tensor]], names: tuple[str, ...],
               world: World = World()) -> list[dict[str, float]]:
    """One host sync for many steps: stack to (steps, stats) on device, average over ranks, copy once."""
    table = torch.stack([torch.stack([s[k].float() for k in names]) for s in pending])
    table = distributed.mean(table, world).cpu().tolist()
    return [dict(zip(names, row)) for row in table]


def history_frame(run: TrainState, loss: str | None = None) -> pd.DataFrame:
    """Every step's statistics (step.stat_names(loss); without `loss`, those the history holds), one row per step."""
    names = stat_names(loss) if loss else [k for k in (run.history[0] if run.history else stat_names("bce"))
                                           if k != "step"]
    return pd.DataFrame(run.history, columns=["step", *names])
