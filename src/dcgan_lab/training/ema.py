"""An exponential moving average of the generator's weights (Yazici et al. 2019, "The Unusual
Effectiveness of Averaging in GAN Training"): often a better generator than the last iterate."""

from __future__ import annotations

import copy

import torch

from ..gan.models import Generator


class EMA:
    """A frozen copy of G whose parameters follow G's: ema <- decay * ema + (1 - decay) * g.

    Buffers (batch norm running statistics) are copied, not averaged: they describe the live
    weights' activations, and an average of them would match neither network."""

    def __init__(self, g: Generator, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(g).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, g: Generator, step: int) -> None:
        # Warm-up: early on the average would be dominated by the random initial weights.
        decay = min(self.decay, (1 + step) / (10 + step))
        for ema_p, p in zip(self.model.parameters(), g.parameters()):
            ema_p.lerp_(p, 1 - decay)
        for ema_b, b in zip(self.model.buffers(), g.buffers()):
            ema_b.copy_(b)
