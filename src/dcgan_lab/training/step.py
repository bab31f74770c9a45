"""One training step: the D update, then the G update, returning detached statistics as tensors.

Logging, sampling and checkpointing happen around it (loop.py), never inside it, and nothing here
reads a value back to the host: the loop does that every `train.log_every` steps.
"""

from __future__ import annotations

import torch

from ..gan.augment import Augment
from ..gan.losses import d_loss, g_loss
from ..gan.models import Discriminator, Generator
from .distributed import RealFake
from .speed import FP32, Precision

STAT_NAMES = ("loss_d", "loss_g", "d_real", "d_fake", "d_gen")


def train_step(
    g: Generator,
    d: Discriminator,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    real: torch.Tensor,  # (B, C, S, S) in the pixel range
    z: torch.Tensor,  # (B, latent_dim)
    augment: Augment,
    loss: str = "bce",
    d_pair: RealFake | None = None,  # D on (real, fake) in one call; DDP-wrapped under torchrun
    prec: Precision = FP32,  # autocast (and fp16 loss scaling), see speed.py
) -> dict[str, torch.Tensor]:
    # Phase 1, D: push D(real) up and D(G(z)) down. G's output is detached: no G gradient here.
    d.requires_grad_(True)
    with prec.autocast():
        fake = g(z)  # (B, C, S, S)
        pair = d_pair if d_pair is not None else RealFake(d)
        real_logits, fake_logits = pair(augment(real), augment(fake.detach()))  # (B,), (B,)
        loss_d = d_loss(loss, real_logits, fake_logits)
    prec.step(loss_d, opt_d, prec.scaler_d)  # zero_grad, backward, step

    # Phase 2, G: make the just-updated D call the same fakes real. D's weights are not updated here,
    # so their gradients are not computed: backward through D gives G its gradient and skips D's
    # weight gradients (8% of the step on a 2-core CPU; G's gradient is bitwise the same).
    d.requires_grad_(False)
    with prec.autocast():
        gen_logits = d(augment(fake))
        loss_g = g_loss(loss, gen_logits)
    prec.step(loss_g, opt_g, prec.scaler_g)

    # Detached device tensors: the caller decides when to pay for a host sync.
    return {
        "loss_d": loss_d.detach(),
        "loss_g": loss_g.detach(),
        "d_real": torch.sigmoid(real_logits.detach()).mean(),  # D(x)
        "d_fake": torch.sigmoid(fake_logits.detach()).mean(),  # D(G(z)) before the D update
        "d_gen": torch.sigmoid(gen_logits.detach()).mean(),  # D(G(z)) after it
    }
