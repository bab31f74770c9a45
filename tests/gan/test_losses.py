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


def test_gradient_penalty_is_zero_for_a_unit_norm_linear_critic_and_positive_otherwise():
    from dcgan_lab.gan.losses import gradient_penalty

    torch.manual_seed(0)
    real, fake, mix = torch.randn(6, 1, 4, 4), torch.randn(6, 1, 4, 4), torch.rand(6, 1, 1, 1)
    w = torch.randn(16)
    unit = lambda x: x.flatten(1) @ (w / w.norm())  # noqa: E731  gradient w/|w| everywhere: norm 1
    assert gradient_penalty(unit, real, fake, mix).item() == pytest.approx(0.0, abs=1e-10)
    double = lambda x: x.flatten(1) @ (2 * w / w.norm())  # noqa: E731  norm 2: penalty (2 - 1)^2 = 1
    assert gradient_penalty(double, real, fake, mix).item() == pytest.approx(1.0, rel=1e-6)


def test_gradient_penalty_equals_autograd_by_hand_and_trains_the_critic():
    from dcgan_lab.gan.losses import gradient_penalty

    torch.manual_seed(1)
    critic = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    real, fake, mix = torch.randn(5, 1, 4, 4), torch.randn(5, 1, 4, 4), torch.rand(5, 1, 1, 1)
    gp = gradient_penalty(lambda x: critic(x).view(-1), real, fake, mix)
    # By hand: one sample at a time, the input gradient of its own score.
    expected = []
    for i in range(5):
        x = (mix[i] * real[i] + (1 - mix[i]) * fake[i]).unsqueeze(0).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(x).sum(), x)
        expected.append((grad.norm() - 1) ** 2)
    assert gp.item() == pytest.approx(torch.stack(expected).mean().item(), rel=1e-6)
    assert gp.item() > 0
    gp.backward()  # create_graph: the penalty has a gradient for the critic's weights
    assert all(w.grad.abs().sum() > 0 for w in (critic[1].weight, critic[3].weight))


def test_wgan_losses_are_the_critic_score_gaps():
    real, fake = torch.tensor([2.0, 4.0]), torch.tensor([-1.0, 1.0])
    assert d_loss("wgan-gp", real, fake).item() == pytest.approx(0.0 - 3.0)
    assert g_loss("wgan-gp", fake).item() == pytest.approx(0.0)
