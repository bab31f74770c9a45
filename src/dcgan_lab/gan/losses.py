"""The GAN losses, as pure functions of D's logits: what the two phases of the training step minimise."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def d_loss(kind: str, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """D's loss: push real logits up and fake ones down."""
    if kind == "hinge":
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    # BCE on logits: real -> 1, fake -> 0 (logits + BCEWithLogits, not Sigmoid + BCELoss: stable in fp16)
    return F.binary_cross_entropy_with_logits(
        real_logits, torch.ones_like(real_logits)
    ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def g_loss(kind: str, fake_logits: torch.Tensor) -> torch.Tensor:
    """G's loss on D's logits for its samples."""
    if kind == "hinge":
        return -fake_logits.mean()
    # Non-saturating: maximise log D(G(z)) rather than minimise log(1 - D(G(z))) (Goodfellow et al. 2014).
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
