"""Stopping a training run by signal without losing it.

SIGTERM (what a cloud preemption or a batch scheduler sends) and SIGINT (Ctrl-C) ask the loop to stop
after the step it is in: it reads the pending losses back, writes a resumable checkpoint at that step and
raises `Interrupted`, so a rerun continues from that very step. A second signal does not wait: it raises
KeyboardInterrupt at once (a checkpoint being written is abandoned; the previous one stays whole).
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from ..core.errors import Stopped


class Interrupted(Stopped):
    """Training stopped on a signal, after writing a resumable checkpoint at `step` (to `checkpoint`, once
    the train stage has said where)."""

    def __init__(self, step: int, signum: signal.Signals, checkpoint: Path | None = None):
        super().__init__(step, signum, checkpoint)
        self.step, self.signum, self.checkpoint = step, signum, checkpoint

    def __str__(self) -> str:
        where = f" in {self.checkpoint}" if self.checkpoint else ""
        return (f"{self.signum.name} at step {self.step}; a resumable checkpoint of that step is{where}: "
                f"rerun `dvc repro` to continue from step {self.step}")

    @property
    def exit_code(self) -> int:
        return 128 + int(self.signum)  # what a shell reports for a process ended by that signal


class StopOnSignal:
    """A context manager that turns SIGTERM and SIGINT into a request the loop polls (call the object:
    the signal received, or None). Only the main thread can install handlers; elsewhere it does nothing."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self._previous: dict[signal.Signals, object] = {}

    def __enter__(self) -> "StopOnSignal":
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame) -> None:
        if self.received is not None:  # the second one: stop now
            raise KeyboardInterrupt(f"second signal ({signal.Signals(signum).name}) while stopping")
        self.received = signal.Signals(signum)

    def __call__(self) -> signal.Signals | None:
        return self.received
