"""The GAN losses on known logits: BCE (non-saturating for G) and hinge."""

import math

import pytest
import torch

from dcgan_lab.gan.losses import d_loss, g_loss


def test_bce_at_zero_logits_is_log_2_per_term():
    zeros = torch.zeros(4)
    assert d_loss("bce", zeros, zeros).item() == pytest.approx(2 * math.log(2))
    assert g_loss("bce", zeros).item() == pytest.approx(math.log(2))
    real, fake = torch.tensor([1.0, -1.0]), torch.tensor([0.5, 2.0])
    expected = (-torch.log(torch.sigmoid(real)).mean() - torch.log(1 - torch.sigmoid(fake)).mean()).item()
    assert d_loss("bce", real, fake).item() == pytest.approx(expected, rel=1e-6)


def test_bce_is_finite_for_confident_logits_and_g_keeps_its_gradient():
    assert d_loss("bce", torch.tensor([1000.0]), torch.tensor([-1000.0])).item() == 0.0  # on logits: no log(0)
    assert math.isfinite(d_loss("bce", torch.tensor([-1000.0]), torch.tensor([1000.0])).item())
    # Non-saturating: when D rejects G's samples outright, G's gradient stays near -1, not near 0.
    logits = torch.tensor([-20.0], requires_grad=True)
    g_loss("bce", logits).backward()
    assert logits.grad.item() == pytest.approx(-1.0, abs=1e-6)


def test_hinge_on_known_logits():
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-2.0, 0.5])
    # relu(1 - real) = [0, 1] -> 0.5; relu(1 + fake) = [0, 1.5] -> 0.75
    assert d_loss("hinge", real, fake).item() == pytest.approx(1.25)
    assert g_loss("hinge", fake).item() == pytest.approx(0.75)
    assert d_loss("hinge", torch.tensor([3.0]), torch.tensor([-3.0])).item() == 0.0  # beyond the margin: no loss
