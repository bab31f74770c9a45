"""The GAN losses, as pure functions of D's logits: what the two phases of the training step minimise.
With `wgan-gp`, D is a critic (Gulrajani et al. 2017): its outputs are scores, not logits of a probability."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def d_loss(kind: str, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """D's loss: push real logits up and fake ones down (wgan-gp: without its gradient penalty)."""
    if kind == "hinge":
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    if kind == "wgan-gp":  # minus the critic's estimate of the Wasserstein-1 distance
        return fake_logits.mean() - real_logits.mean()
    # BCE on logits: real -> 1, fake -> 0 (logits + BCEWithLogits, not Sigmoid + BCELoss: stable in fp16)
    return F.binary_cross_entropy_with_logits(
        real_logits, torch.ones_like(real_logits)
    ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def g_loss(kind: str, fake_logits: torch.Tensor) -> torch.Tensor:
    """G's loss on D's logits for its samples."""
    if kind in ("hinge", "wgan-gp"):
        return -fake_logits.mean()
    # Non-saturating: maximise log D(G(z)) rather than minimise log(1 - D(G(z))) (Goodfellow et al. 2014).
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, mix: torch.Tensor,
                     labels: torch.Tensor | None = None) -> torch.Tensor:
    """Gulrajani et al. 2017: E[(||grad_x critic(x)||_2 - 1)^2] at x = mix * real + (1 - mix) * fake, one
    point per sample on the line between a real and a fake image (`mix`: (B, 1, 1, 1) uniform in [0, 1]).
    The gradient is kept in the graph (create_graph), so the penalty trains the critic's weights."""
    x = (mix * real + (1 - mix) * fake.detach()).requires_grad_(True)
    scores = critic(x) if labels is None else critic(x, labels)
    (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).square().mean()
