"""When the training loop does what: its schedule of read-backs, evaluations, epoch ends and checkpoints,
and its clock (images/s per epoch, training time across sessions)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from .state import TrainState


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
    """Training time: per epoch (for images/s) and banked into `state.seconds` at each checkpoint."""

    def __init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        self.mark = self.epoch_started = time.perf_counter()
        self.epoch_steps = 0

    def since_mark(self) -> float:
        return time.perf_counter() - self.mark

    def bank(self, state: TrainState) -> None:
        state.seconds += self.since_mark()
        self.mark = time.perf_counter()

    def epoch(self, images_per_step: int) -> dict[str, float]:
        seconds = time.perf_counter() - self.epoch_started
        timing = {"epoch_seconds": seconds, "images_per_sec": self.epoch_steps * images_per_step / seconds}
        self.epoch_started, self.epoch_steps = time.perf_counter(), 0
        return timing
