"""An exponential moving average of the generator's weights (Yazici et al. 2019, "The Unusual
Effectiveness of Averaging in GAN Training"): often a better generator than the last iterate, and the
standing statistics that give its batch-norm layers running statistics of its own (BigGAN, Brock et al. 2019)."""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..gan.models import Generator


class EMA:
    """A frozen copy of G whose parameters follow G's: ema <- decay * ema + (1 - decay) * g.

    Buffers (batch norm running statistics) are copied, not averaged: an average of them would match
    neither network. The copies describe the live weights' activations, not the average's: before the
    EMA generator is saved, `standing_statistics` recomputes them from its own (train.ema_bn_batches)."""

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


@torch.no_grad()
def standing_statistics(g: Generator, n_batches: int, batch_size: int, seed: int,
                        device: torch.device) -> Generator:
    """Recompute G's batch-norm running statistics from its own activations (BigGAN's "standing
    statistics"), in place; returns G in eval mode. Each batch-norm layer (plain or inside conditional batch
    norm) forgets its statistics and averages those of `n_batches` train-mode batches of `batch_size`
    fresh samples with equal weight (momentum None), then gets its momentum back.

    The noise, and a conditional G's labels (uniform over its classes), come from a CPU generator seeded
    with `seed`: the same noise on every device, so the saved model, and its scores, are repeatable.
    A G without batch norm is returned untouched."""
    norms = [m for m in g.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return g
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average: every batch counts the same
    noise = torch.Generator().manual_seed(seed)
    g.to(device).train()
    try:
        for _ in range(n_batches):
            z = torch.randn(batch_size, g.spec.latent_dim, generator=noise)  # drawn on the CPU: any device, same z
            if g.spec.n_classes:
                labels = torch.randint(g.spec.n_classes, (batch_size,), generator=noise)
                g(z.to(device), labels.to(device))
            else:
                g(z.to(device))
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        g.eval()
    return g
