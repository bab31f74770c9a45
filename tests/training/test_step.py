"""One training step (D update, then G update) on real models: it moves both, returns detached statistics,
and equals the textbook step bit for bit although it skips D's weight gradients in the G phase."""

import copy

import pytest
import torch

from dcgan_lab.gan.augment import make_augment
from dcgan_lab.gan.models import Discriminator, Generator, specs_from_params
from dcgan_lab.gan.pixels import to_pixels
from dcgan_lab.training.step import Batch, stat_names, train_step


@pytest.mark.parametrize("variant", ["baseline", "improved", "final"])
def test_one_real_step_changes_weights_and_returns_finite_stats(params, images, variant):
    v = params.variant(variant)
    g_spec, d_spec = specs_from_params(params, v, channels=1)
    g, d = Generator(g_spec), Discriminator(d_spec)
    g0, d0 = copy.deepcopy(g.state_dict()), copy.deepcopy(d.state_dict())
    opt_g = torch.optim.Adam(g.parameters(), lr=params.train.lr_g, betas=params.train.betas)
    opt_d = torch.optim.Adam(d.parameters(), lr=params.train.lr_d, betas=params.train.betas)
    real = to_pixels(images[:16], params.data.pixel_range)
    stats = train_step(g, d, opt_g, opt_d, [Batch(real, torch.randn(16, g_spec.latent_dim))],
                       make_augment(v.augment, params.data.pixel_range), params.train.loss)
    assert set(stats) == set(stat_names("bce"))
    assert all(torch.isfinite(s) and s.dim() == 0 and not s.requires_grad for s in stats.values())
    assert 0 <= stats["d_real"] <= 1
    for before, model in ((g0, g), (d0, d)):
        changed = [k for k, w in model.state_dict().items() if w.is_floating_point() and not torch.equal(w, before[k])]
        assert changed, "a training step must move the weights"


def test_step_equals_the_textbook_step_that_also_computes_d_gradients_in_the_g_phase(params, images):
    """Phase 2 turns off D's weight gradients (D is not updated there): G and D must end up bitwise
    where the textbook step leaves them (which backpropagates into D's weights in both phases)."""
    import torch.nn.functional as F

    v = params.variant("final")  # spectral norm, batch norm and DiffAugment on every D input
    g_spec, d_spec = specs_from_params(params, v, channels=1)
    torch.manual_seed(0)
    nets = [Generator(g_spec), Discriminator(d_spec)]
    ours, textbook = nets, copy.deepcopy(nets)
    opts = [[torch.optim.Adam(m.parameters(), lr=2.0e-4, betas=(0.5, 0.999)) for m in pair] for pair in (ours, textbook)]
    augs = [make_augment(v.augment, params.data.pixel_range, torch.Generator().manual_seed(1)) for _ in range(2)]
    ones, zeros = torch.ones(16), torch.zeros(16)
    for i in range(3):
        real = to_pixels(images[16 * i : 16 * (i + 1)], params.data.pixel_range)
        z = torch.randn(16, g_spec.latent_dim, generator=torch.Generator().manual_seed(i))
        train_step(*ours, *opts[0], [Batch(real, z)], augs[0], "bce")
        (g, d), (opt_g, opt_d), aug = textbook, opts[1], augs[1]
        fake = g(z)
        real_logits, fake_logits = d(aug(real)), d(aug(fake.detach()))
        loss_d = (F.binary_cross_entropy_with_logits(real_logits.view(-1), ones)
                  + F.binary_cross_entropy_with_logits(fake_logits.view(-1), zeros))
        opt_d.zero_grad(), loss_d.backward(), opt_d.step()
        d_phase = [p.grad.clone() for p in d.parameters()]
        loss_g = F.binary_cross_entropy_with_logits(d(aug(fake)).view(-1), ones)
        opt_g.zero_grad(), loss_g.backward(), opt_g.step()
        assert all(p.grad is not None for p in d.parameters())  # the textbook step did compute them
        # ... in the G phase too (added to the D phase's), where our step left D's gradients as the D phase
        # made them: its G phase computed none.
        assert any(not torch.equal(p.grad, q) for p, q in zip(d.parameters(), d_phase))
        assert all(torch.equal(p.grad, q) for p, q in zip(ours[1].parameters(), d_phase))
    for a, b in zip(ours, textbook):
        for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
            assert torch.equal(x, y), name


def test_hinge_step_reports_the_hinge_losses(params, images):
    g_spec, d_spec = specs_from_params(params, params.variant("baseline"), channels=1)
    torch.manual_seed(0)
    g, d = Generator(g_spec), Discriminator(d_spec)
    opt_g, opt_d = torch.optim.SGD(g.parameters(), lr=0.0), torch.optim.SGD(d.parameters(), lr=0.0)  # frozen
    real, z = to_pixels(images[:16], params.data.pixel_range), torch.randn(16, g_spec.latent_dim)
    stats = train_step(g, d, opt_g, opt_d, [Batch(real, z)], lambda x: x, "hinge")
    with torch.no_grad():
        real_logits, fake_logits = d(real), d(g(z))
    assert stats["loss_d"].item() == pytest.approx(
        (torch.relu(1 - real_logits).mean() + torch.relu(1 + fake_logits).mean()).item(), rel=1e-5)
    assert stats["loss_g"].item() == pytest.approx(-fake_logits.mean().item(), rel=1e-5)
    assert stats["d_real"].item() == pytest.approx(torch.sigmoid(real_logits).mean().item(), rel=1e-5)


def _nets(params, variant: str, n_classes: int = 0):
    v = params.variant(variant)
    t = params.train_for(v)
    g_spec, d_spec = specs_from_params(params, v, channels=1, n_classes=n_classes)
    torch.manual_seed(0)
    g, d = Generator(g_spec), Discriminator(d_spec)
    return g, d, torch.optim.Adam(g.parameters(), betas=t.betas), torch.optim.Adam(d.parameters(), betas=t.betas)


def test_d_steps_3_makes_3_d_updates_per_g_update_each_on_its_own_batch(params, images):
    g, d, opt_g, opt_d = _nets(params, "baseline")
    real = to_pixels(images[:48], params.data.pixel_range)
    batches = [Batch(real[16 * k : 16 * (k + 1)], torch.randn(16, g.spec.latent_dim)) for k in range(3)]
    seen = []
    d.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    train_step(g, d, opt_g, opt_d, batches, lambda x: x, "bce")
    assert [int(s["step"]) for s in opt_d.state.values()] == [3] * len(opt_d.state)  # Adam's own count
    assert [int(s["step"]) for s in opt_g.state.values()] == [1] * len(opt_g.state)
    # D saw each real batch once (then the fakes), and G's update went through the last fakes.
    assert all(torch.equal(seen[2 * k], batches[k].real) for k in range(3)) and len(seen) == 7


def test_a_wgan_gp_step_reports_the_wasserstein_estimate_and_the_penalty(params, images):
    g, d, opt_g, opt_d = _nets(params, "wgan")
    for opt in (opt_g, opt_d):
        opt.param_groups[0]["lr"] = 0.0  # frozen: the statistics can be recomputed from the same weights
    real, z, mix = to_pixels(images[:16], params.data.pixel_range), torch.randn(16, g.spec.latent_dim), torch.rand(
        16, 1, 1, 1)
    stats = train_step(g, d, opt_g, opt_d, [Batch(real, z, mix=mix)], lambda x: x, "wgan-gp", gp_weight=10.0)
    assert set(stats) == set(stat_names("wgan-gp")) == {"loss_d", "loss_g", "wasserstein", "gp"}
    from dcgan_lab.gan.losses import gradient_penalty

    with torch.no_grad():
        real_scores, fake = d(real), g(z)
        fake_scores = d(fake)
    gp = gradient_penalty(d, real, fake, mix)
    assert stats["wasserstein"].item() == pytest.approx((real_scores.mean() - fake_scores.mean()).item(), rel=1e-5)
    assert stats["gp"].item() == pytest.approx(gp.item(), rel=1e-5)
    assert stats["loss_d"].item() == pytest.approx(-stats["wasserstein"].item() + 10 * gp.item(), rel=1e-5)
    assert stats["loss_g"].item() == pytest.approx(-fake_scores.mean().item(), rel=1e-5)


def test_a_conditional_step_hands_each_network_its_labels(params, images):
    g, d, opt_g, opt_d = _nets(params, "cgan", n_classes=10)
    calls = []
    d.register_forward_hook(lambda module, args, out: calls.append(args[1]))
    real_labels, fake_labels = torch.arange(16) % 10, torch.full((16,), 7)
    batch = Batch(to_pixels(images[:16], params.data.pixel_range), torch.randn(16, g.spec.latent_dim), real_labels,
                  fake_labels)
    stats = train_step(g, d, opt_g, opt_d, [batch], lambda x: x, "bce")
    assert [c.tolist() for c in calls] == [real_labels.tolist(), fake_labels.tolist(), fake_labels.tolist()]
    assert all(torch.isfinite(s) for s in stats.values())
