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

import pandas as pd
import torch

from ..core.config import TrainConfig
from ..gan.augment import make_augment
from ..gan.models import Generator
from ..gan.pixels import to_pixels
from . import distributed, speed
from .batches import Shard
from .distributed import World
from .guard import Diverged, DivergenceGuard
from .interrupt import Interrupted
from .rollback import Rollback
from .schedule import Clock, Schedule
from .spec import RunSpec
from .speed import Precision
from .state import TrainState, cpu_copy, new_state
from .step import Batch, stat_names, train_step


class Hooks:
    """What the loop calls around its steps; each does nothing here: subclass and override what you need
    (run.RunHooks is the train stage's). Steps are 1-based counts of optimizer steps."""

    def on_start(self, step: int, total: int) -> None:
        """Before the first step of this session: the step it starts from and the run's last step."""

    def on_log(self, steps: list[int], rows: list[dict[str, float]]) -> None:
        """After each read-back: the steps read back and their statistics (step.stat_names)."""

    def on_eval(self, step: int, g: Generator) -> float | None:
        """Every train.eval_every steps and at the end: a score of G (lower is better), or None."""
        return None

    def on_epoch(self, epoch: int, step: int, g: Generator, timing: dict[str, float]) -> None:
        """At each epoch's end, with its timing (Clock.epoch)."""

    def on_checkpoint(self, snapshot: dict) -> None:
        """At each checkpoint: the snapshot a resume continues from (see `snapshot`)."""

    def on_rollback(self, exc: Diverged, state: TrainState) -> None:
        """After the guard fired and the state was put back to the last checkpoint."""


def set_determinism(deterministic: bool | None, device: torch.device) -> bool:
    """Deterministic kernels where torch has them (null: on for CPU, off for CUDA). Returns the choice."""
    on = device.type != "cuda" if deterministic is None else deterministic
    if on and device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS first starts
    torch.use_deterministic_algorithms(on, warn_only=True)
    # Deterministic mode also fills every fresh tensor with NaN (564 fills a step, 4% of final's step on an AVX2 CPU,
    # benchmarks/RESULTS.md), to expose reads of memory nothing wrote. No kernel of the step reads such memory (a
    # run is bitwise the same either way, the resume tests pin it), so the fill is switched off.
    torch.utils.deterministic.fill_uninitialized_memory = False
    torch.backends.cudnn.deterministic = on
    torch.backends.cudnn.benchmark = not on and device.type == "cuda"
    return on


def snapshot(state: TrainState, precision: Precision, world: World) -> dict:
    """What a checkpoint or a rollback keeps: the state, every rank's random streams, the loss scalers."""
    snap = state.state_dict()
    snap["generators"] = distributed.gather(snap["generators"], world)
    snap["precision"] = precision.state_dict()
    return snap


@dataclass
class StepModels:
    """What the step calls: DDP-wrapped under torchrun, compiled if asked (state.g / state.d are what is saved)."""

    g: torch.nn.Module
    d: torch.nn.Module
    d_pair: torch.nn.Module
    memory_format: torch.memory_format


def step_models(state: TrainState, train: TrainConfig, device: torch.device, world: World) -> StepModels:
    memory_format = torch.channels_last if speed.channels_last(train, device) else torch.contiguous_format
    state.g.to(memory_format=memory_format), state.d.to(memory_format=memory_format)
    g, d_pair = distributed.wrap(state.g, state.d, world, device, train.sync_batch_norm)
    g, d_pair, d = (speed.maybe_compile(m, train, device) for m in (g, d_pair, state.d))
    return StepModels(g, d, d_pair, memory_format)


class Loop:
    """Everything one `fit` call works with, and the pieces of its loop. `fit` below reads top to bottom."""

    def __init__(self, spec: RunSpec, images: torch.Tensor, device: torch.device, hooks: Hooks,
                 resume: dict | None, world: World, stop: Callable[[], signal.Signals | None] | None,
                 labels: torch.Tensor | None):
        train = self.train = spec.train
        set_determinism(train.deterministic, device)
        self.state = new_state(spec, device, world.rank)
        self.precision = speed.precision(train, device)
        if resume is not None:
            self.state.load_state_dict(resume)
            self.precision.load_state_dict(resume.get("precision", {}))
        self.data = Shard(images, device, train.batch_size, train.stream, world,
                          labels if spec.conditional else None, train.d_steps)
        # A conditional G is asked for labels drawn from the training set's class distribution.
        self.class_freq = (torch.bincount(labels, minlength=spec.g.n_classes).float().to(device)
                           if spec.conditional else None)
        steps_per_epoch = self.data.batches_per_epoch // train.d_steps  # a step is one G update: d_steps batches
        epochs = steps_per_epoch * train.epochs
        self.sched = Schedule(steps_per_epoch, epochs if train.max_steps is None else min(train.max_steps, epochs),
                              train.log_every, train.eval_every, train.checkpoint_every)
        self.augment = make_augment(spec.augment, spec.pixel_range, self.state.aug_gen)
        self.models = step_models(self.state, train, device, world)
        self.pixel_range, self.n_images, self.device = spec.pixel_range, images.shape[0], device
        self.images_per_step = spec.images_per_step * world.size  # real images a step reads, over all ranks
        self.hooks, self.world, self.stop = hooks, world, stop
        # D(x) and D(G(z)) are probabilities only under bce: the saturation check watches bce runs alone.
        self.guard = DivergenceGuard(train.collapse_patience if train.loss == "bce" else 0, train.saturation)
        self.clock, self.stat_names = Clock(), stat_names(train.loss)
        self.rollback = Rollback(train.on_divergence == "rollback", train.max_rollbacks,
                                 snapshot(self.state, self.precision, world))
        self.pending: list[dict[str, torch.Tensor]] = []  # statistics of the steps not read back yet
        self.nan_injected = False
        self.state.g.train(), self.state.d.train()
        self.data.set_order(self.state.order)  # a resumed run continues mid-epoch

    def train_one_step(self) -> None:
        """The next d_steps batches, d_steps D updates and one G update (step.py), the EMA; the statistics stay
        on the device."""
        state, train, models = self.state, self.train, self.models
        i = state.step % self.sched.steps_per_epoch
        if i == 0:  # a new epoch: a new permutation of the training set
            state.order = torch.randperm(self.n_images, generator=state.data_gen)
            self.data.set_order(state.order)
        if train.inject_nan_at == state.step + 1 and not self.nan_injected:  # testing the guard only
            self.nan_injected = _inject_nan(state.d)
        batches = [self.batch(i * train.d_steps + k) for k in range(train.d_steps)]
        self.pending.append(train_step(models.g, models.d, state.opt_g, state.opt_d, batches, self.augment,
                                       train.loss, models.d_pair, self.precision, train.gp_weight,
                                       train.mode_seeking))
        state.step += 1
        self.clock.epoch_steps += 1
        if state.ema:
            state.ema.update(state.g, state.step)

    def batch(self, j: int) -> Batch:
        """Batch j of the epoch and its random inputs, drawn from the run's noise stream in a fixed order
        (noise, then fake labels, then mixing weights), so an unconditional bce run draws noise alone."""
        state, train, device = self.state, self.train, self.device
        real = to_pixels(self.data.batch(j), self.pixel_range).contiguous(memory_format=self.models.memory_format)
        z = torch.randn(train.batch_size, state.g.spec.latent_dim, device=device, generator=state.noise_gen)
        batch = Batch(real, z)
        if self.class_freq is not None:
            batch.real_labels = self.data.labels(j)
            # Mode seeking compares G(z1, y) with G(z2, y): fakes n..2n-1 repeat the labels of fakes 0..n-1.
            n = train.batch_size // 2 if train.mode_seeking else 0
            labels = torch.multinomial(self.class_freq, train.batch_size - n, replacement=True,
                                       generator=state.noise_gen)
            batch.fake_labels = torch.cat([labels[:n], labels]) if n else labels
        if train.loss == "wgan-gp":
            batch.mix = torch.rand(train.batch_size, 1, 1, 1, device=device, generator=state.noise_gen)
        return batch

    def read_back_due(self) -> bool:
        """Every log_every steps, and before anything looks at the models (eval, epoch end, checkpoint)."""
        step = self.state.step
        return (len(self.pending) == self.sched.log_every or self.sched.evaluates(step)
                or self.sched.epoch_end(step) or self.sched.checkpoints(step))

    def read_back(self) -> bool:
        """One host sync for the pending steps, checked by the divergence guard, kept and handed to on_log.
        False when the guard fired and the run was rolled back (the caller goes on from there)."""
        state = self.state
        steps = list(range(state.step - len(self.pending) + 1, state.step + 1))
        rows, self.pending = _read_back(self.pending, self.stat_names, self.world), []
        try:
            self.guard.check(steps, rows)
        except Diverged as exc:
            self.rollback.restore(exc, state, self.precision, state.seconds + self.clock.since_mark())  # or raise
            self.data.set_order(state.order)
            self.guard.reset(), self.clock.restart()
            self.hooks.on_rollback(exc, state)
            return False
        state.history += [{"step": n, **row} for n, row in zip(steps, rows)]
        self.hooks.on_log(steps, rows)
        return True

    def evaluate(self) -> None:
        """A quick score of G (lower is better); the best generator so far is kept in the state."""
        state = self.state
        score = self.hooks.on_eval(state.step, state.g)
        state.g.train()
        if score is not None and (state.best is None or score < state.best["score"]):
            state.best = {"score": score, "step": state.step, "state": cpu_copy(state.g.state_dict())}

    def end_epoch(self) -> None:
        state = self.state
        timing = self.clock.epoch(self.images_per_step)
        state.timings.append(timing)
        self.hooks.on_epoch(math.ceil(state.step / self.sched.steps_per_epoch), state.step, state.g, timing)

    def checkpoint(self) -> None:
        """A resumable snapshot: what a rollback returns to, and (on_checkpoint) what a rerun resumes from."""
        self.clock.bank(self.state)
        distributed.check_in_sync(self.state.g, self.world)
        self.rollback.keep(snapshot(self.state, self.precision, self.world))
        self.hooks.on_checkpoint(self.rollback.last_good)

    def stop_requested(self) -> signal.Signals | None:
        """A signal asked the run to stop (interrupt.py). One process polls it every step (no host sync: a
        Python flag); under torchrun the ranks agree on it where they sync anyway, at the read-backs."""
        if self.stop is None:
            return None
        if not self.world.distributed:
            return self.stop()
        if self.pending:  # only right after a read-back
            return None
        return distributed.any_signal(self.stop(), self.world, self.device)

    def interrupt(self, signum: signal.Signals) -> None:
        """Stop here: read the pending steps back, write a checkpoint at this step, raise Interrupted."""
        if self.pending and not self.read_back():
            return  # the guard rolled the run back: the checkpoint below is the restored state
        self.checkpoint()
        raise Interrupted(self.state.step, signum)


def fit(
    spec: RunSpec,  # what to train, resolved once (RunSpec.resolve)
    images: torch.Tensor,  # (N, C, S, S) uint8 on the host, possibly memory-mapped
    device: torch.device,
    *,
    hooks: Hooks = Hooks(),
    resume: dict | None = None,  # a snapshot to continue from
    world: World = World(),  # under torchrun: this rank and the number of ranks
    stop: Callable[[], signal.Signals | None] | None = None,  # polled each step, e.g. interrupt.StopOnSignal
    labels: torch.Tensor | None = None,  # (N,) int64: the images' classes (conditional variants use them)
) -> TrainState:
    """Train one run; returns the final state (models, EMA, per-step history, best generator).
    Under torchrun, call it on every rank; hooks are for rank 0 (the others pass none). When `stop` returns
    a signal, a checkpoint is written at that step and Interrupted is raised."""
    loop = Loop(spec, images, device, hooks, resume, world, stop, labels)
    state, sched = loop.state, loop.sched
    hooks.on_start(state.step, sched.total)
    try:
        while state.step < sched.total:
            loop.train_one_step()
            if loop.read_back_due() and not loop.read_back():
                continue  # rolled back to the last checkpoint
            if sched.evaluates(state.step):
                loop.evaluate()
            if sched.epoch_end(state.step):
                loop.end_epoch()
            if sched.checkpoints(state.step):
                loop.checkpoint()
            if (signum := loop.stop_requested()) is not None:
                loop.interrupt(signum)
    finally:
        loop.data.close()
    return state


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


def history_frame(state: TrainState, loss: str | None = None) -> pd.DataFrame:
    """Every step's statistics (step.stat_names(loss); without `loss`, those the history holds), one row per step."""
    names = stat_names(loss) if loss else [k for k in (state.history[0] if state.history else stat_names("bce"))
                                           if k != "step"]
    return pd.DataFrame(state.history, columns=["step", *names])
