"""Progress you can watch: a tqdm bar when stderr is a terminal (`dvc repro` in a shell); anywhere else (CI,
`dvc queue logs`, a file) one plain line every ~10%, so logs stay readable instead of filling with redraws.

Callers update it where they already have the numbers (the training loop at its read-backs), so showing
progress costs no host sync of its own.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm


class Progress:
    """`total` units of work named `desc`, from `initial` (a resumed run); `images_per_unit` turns the rate into
    images/s."""

    def __init__(self, total: int, desc: str, unit: str = "step", initial: int = 0, images_per_unit: int = 0,
                 file: TextIO | None = None):
        self.total, self.desc, self.unit, self.images_per_unit = total, desc, unit, images_per_unit
        self.file = file or sys.stderr
        self.n, self.started, self.first = initial, time.perf_counter(), initial
        self.postfix: dict[str, str] = {}
        self.bar = None
        if _is_terminal(self.file):
            self.bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, file=self.file, dynamic_ncols=True)
        self.next_tenth = int(10 * initial / total) + 1 if total else 10

    def update(self, n: int = 1, **postfix: float | str) -> None:
        """`n` more units done; `postfix` (e.g. losses) is shown beside the rate."""
        self.n += n
        self.postfix = {k: f"{v:.3g}" if isinstance(v, float) else str(v) for k, v in postfix.items()}
        if self.bar is not None:
            if self.postfix or self.images_per_unit:
                self.bar.set_postfix(self._extras(), refresh=False)
            self.bar.update(n)
            return
        if self.total and self.n >= self.total * self.next_tenth / 10 and self.next_tenth <= 10:
            self.next_tenth = int(10 * self.n / self.total) + 1  # one line, however many tenths were crossed
            print(self.line(), file=self.file, flush=True)

    def set(self, n: int) -> None:
        """Go back (or forward) to `n` done, e.g. after a rollback."""
        if self.bar is not None:
            self.bar.n = n
            self.bar.refresh()
        self.n, self.next_tenth = n, int(10 * n / self.total) + 1 if self.total else 10

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def _extras(self) -> dict[str, str]:
        extras = dict(self.postfix)
        if self.images_per_unit:
            extras["img/s"] = f"{self._rate() * self.images_per_unit:.0f}"
        return extras

    def _rate(self) -> float:
        seconds = time.perf_counter() - self.started
        return (self.n - self.first) / seconds if seconds > 0 else 0.0

    def line(self) -> str:
        """`train final seed 0: 40% 625/1562 steps, 31 s, ETA 46 s, img/s 2040, loss_d 0.84, ...`"""
        rate, elapsed = self._rate(), time.perf_counter() - self.started
        eta = f", ETA {(self.total - self.n) / rate:.0f} s" if rate > 0 and self.n < self.total else ""
        extras = "".join(f", {k} {v}" for k, v in self._extras().items())
        return (f"{self.desc}: {100 * self.n / self.total:.0f}% {self.n}/{self.total} {self.unit}s, "
                f"{elapsed:.0f} s{eta}{extras}")


def _is_terminal(file: TextIO) -> bool:
    try:
        return file.isatty()
    except (AttributeError, ValueError):
        return False
