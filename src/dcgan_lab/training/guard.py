"""The divergence guard: notice a dead run from the losses the loop reads back anyway."""

from __future__ import annotations

import math

from ..core.errors import UserError


class Diverged(UserError):
    """Training stopped: a loss went non-finite or D saturated. The message says at which step and why."""

    def __init__(self, step: int, reason: str):
        super().__init__(f"training diverged at step {step}: {reason}")
        self.step, self.reason = step, reason


class DivergenceGuard:
    """Checks every step's statistics (see step.stat_names) as they are read back to the host.

    Saturation: D(x) and D(G(z)) both within `eps` of 0 or 1 means D's sigmoid is flat and G gets
    no useful gradient; `patience` such steps in a row end the run (0 disables this check)."""

    def __init__(self, patience: int, eps: float):
        self.patience, self.eps = patience, eps
        self.saturated_steps = 0

    def reset(self) -> None:
        self.saturated_steps = 0

    def check(self, steps: list[int], rows: list[dict[str, float]]) -> None:
        for step, row in zip(steps, rows):
            for key in ("loss_d", "loss_g"):
                if not math.isfinite(row[key]):
                    raise Diverged(step, f"{key} is {row[key]}")
            if self.patience:
                self.saturated_steps = self.saturated_steps + 1 if self._saturated(row) else 0
                if self.saturated_steps >= self.patience:
                    raise Diverged(step, f"D saturated for {self.patience} steps (D(x)={row['d_real']:.5f}, "
                                         f"D(G(z))={row['d_fake']:.5f}): G gets no gradient")

    def _saturated(self, row: dict[str, float]) -> bool:
        def pinned(p: float) -> bool:
            return min(p, 1 - p) < self.eps

        return pinned(row["d_real"]) and pinned(row["d_fake"])
