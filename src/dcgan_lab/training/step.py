"""One training step: train.d_steps D updates, then one G update, returning detached statistics as tensors.

Logging, sampling and checkpointing happen around it (loop.py), never inside it, and nothing here
reads a value back to the host: the loop does that every `train.log_every` steps. The loop also draws
every random input (real batches, noise, fake labels, the gradient penalty's mixing weights), so the
step is a pure function of its inputs and the models.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..gan.augment import Augment
from ..gan.losses import d_loss, g_loss, gradient_penalty
from ..gan.models import Discriminator, Generator
from .distributed import RealFake
from .speed import FP32, Precision


@dataclass
class Batch:
    """One D update's inputs."""

    real: torch.Tensor  # (B, C, S, S) in the pixel range
    z: torch.Tensor  # (B, latent_dim)
    real_labels: torch.Tensor | None = None  # (B,) int64, conditional variants only
    fake_labels: torch.Tensor | None = None  # (B,) int64 drawn from the real label distribution
    mix: torch.Tensor | None = None  # (B, 1, 1, 1) uniform in [0, 1], wgan-gp only: the penalty's interpolates


def stat_names(loss: str) -> tuple[str, ...]:
    """The statistics a step returns. D(x), D(G(z)) are probabilities only for a D trained as a classifier;
    a wgan-gp critic reports its Wasserstein estimate and the gradient penalty instead."""
    if loss == "wgan-gp":
        return ("loss_d", "loss_g", "wasserstein", "gp")
    return ("loss_d", "loss_g", "d_real", "d_fake", "d_fake_after")


def train_step(
    g: Generator,
    d: Discriminator,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    batches: list[Batch],  # train.d_steps of them: one per D update
    augment: Augment,
    loss: str = "bce",
    d_pair: RealFake | None = None,  # D on (real, fake) in one call; DDP-wrapped under torchrun
    precision: Precision = FP32,  # autocast (and fp16 loss scaling), see speed.py
    gp_weight: float = 10.0,  # wgan-gp: the penalty's weight
    mode_seeking: float = 0.0,  # > 0: the last batch's two halves share labels (Loop.batch); see below
) -> dict[str, torch.Tensor]:
    # Phase 1, D: push D(real) up and D(G(z)) down, once per batch. G's output is detached: no G gradient here.
    d.requires_grad_(True)
    pair = d_pair if d_pair is not None else RealFake(d)
    for batch in batches:
        with precision.autocast():
            fake = g(batch.z, batch.fake_labels)  # (B, C, S, S)
            real_in, fake_in = augment(batch.real), augment(fake.detach())
            real_logits, fake_logits = pair(real_in, fake_in, batch.real_labels, batch.fake_labels)  # (B,), (B,)
            loss_d = d_loss(loss, real_logits, fake_logits)
        if loss == "wgan-gp":  # in fp32, outside autocast: the double backward is what reduced precision breaks
            gp = gradient_penalty(d, real_in.float(), fake_in.float(), batch.mix, batch.real_labels)
            loss_d = loss_d + gp_weight * gp
        precision.step(loss_d, opt_d, precision.scaler_d)  # zero_grad, backward, step

    # Phase 2, G: make the just-updated D call the last fakes real. D's weights are not updated here,
    # so their gradients are not computed: backward through D gives G its gradient and skips D's
    # weight gradients (G's gradient is bitwise the same; the saving: benchmarks/RESULTS.md).
    d.requires_grad_(False)
    with precision.autocast():
        gen_logits = d(augment(fake), batch.fake_labels)
        loss_g = g_loss(loss, gen_logits)
        if mode_seeking:  # Mao et al. 2019: penalise images that move less than their noise does
            n = len(fake) // 2  # fakes i and n + i share a label
            ratio = (fake[:n] - fake[n : 2 * n]).abs().mean() / (batch.z[:n] - batch.z[n : 2 * n]).abs().mean()
            loss_g = loss_g + mode_seeking / (ratio + 1e-5)
    precision.step(loss_g, opt_g, precision.scaler_g)

    # Detached device tensors of the last D update: the caller decides when to pay for a host sync.
    stats = {"loss_d": loss_d.detach(), "loss_g": loss_g.detach()}
    if loss == "wgan-gp":
        stats["wasserstein"] = (real_logits.detach().mean() - fake_logits.detach().mean()).float()
        stats["gp"] = gp.detach()
    else:
        stats["d_real"] = torch.sigmoid(real_logits.detach()).mean()  # D(x)
        stats["d_fake"] = torch.sigmoid(fake_logits.detach()).mean()  # D(G(z)) before the D update
        stats["d_fake_after"] = torch.sigmoid(gen_logits.detach()).mean()  # D(G(z)) after it, in the G update
    return stats
