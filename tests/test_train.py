import copy

import pytest
import torch

from dcgan_lab.augment import make_augment
from dcgan_lab.checkpoint import load_discriminator, load_generator, save_gan
from dcgan_lab.errors import CheckpointError, ConfigError
from dcgan_lab.models import Discriminator, Generator
from dcgan_lab.train import STAT_NAMES, fit, gan_specs, history_frame, to_pixels, to_uint8, train_step


@pytest.fixture
def images():
    return torch.randint(0, 256, (512, 1, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("variant", ["baseline", "improved", "final"])
def test_one_real_step_changes_weights_and_returns_finite_stats(params, images, variant):
    v = params.variant(variant)
    g_spec, d_spec = gan_specs(params, v, channels=1)
    g, d = Generator(g_spec), Discriminator(d_spec)
    g0, d0 = copy.deepcopy(g.state_dict()), copy.deepcopy(d.state_dict())
    opt_g = torch.optim.Adam(g.parameters(), lr=params.train.lr_g, betas=params.train.betas)
    opt_d = torch.optim.Adam(d.parameters(), lr=params.train.lr_d, betas=params.train.betas)
    real = to_pixels(images[:16], params.data.pixel_range)
    stats = train_step(g, d, opt_g, opt_d, real, torch.randn(16, g_spec.latent_dim),
                       make_augment(v.augment, params.data.pixel_range), params.train.loss)
    assert set(stats) == set(STAT_NAMES)
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
    g_spec, d_spec = gan_specs(params, v, channels=1)
    torch.manual_seed(0)
    nets = [Generator(g_spec), Discriminator(d_spec)]
    ours, textbook = nets, copy.deepcopy(nets)
    opts = [[torch.optim.Adam(m.parameters(), lr=2.0e-4, betas=(0.5, 0.999)) for m in pair] for pair in (ours, textbook)]
    augs = [make_augment(v.augment, params.data.pixel_range, torch.Generator().manual_seed(1)) for _ in range(2)]
    ones, zeros = torch.ones(16), torch.zeros(16)
    for i in range(3):
        real = to_pixels(images[16 * i : 16 * (i + 1)], params.data.pixel_range)
        z = torch.randn(16, g_spec.latent_dim, generator=torch.Generator().manual_seed(i))
        train_step(*ours, *opts[0], real, z, augs[0], "bce")
        (g, d), (opt_g, opt_d), aug = textbook, opts[1], augs[1]
        fake = g(z)
        real_logits, fake_logits = d(aug(real)), d(aug(fake.detach()))
        loss_d = (F.binary_cross_entropy_with_logits(real_logits.view(-1), ones)
                  + F.binary_cross_entropy_with_logits(fake_logits.view(-1), zeros))
        opt_d.zero_grad(), loss_d.backward(), opt_d.step()
        loss_g = F.binary_cross_entropy_with_logits(d(aug(fake)).view(-1), ones)
        opt_g.zero_grad(), loss_g.backward(), opt_g.step()
        assert all(p.grad is not None for p in d.parameters())  # the textbook step did compute them
    for a, b in zip(ours, textbook):
        for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
            assert torch.equal(x, y), name


def test_fit_logs_every_step_and_is_deterministic(params, images):
    logged = []
    hooks_seen = []
    from dcgan_lab.train import Hooks

    evaluated = []
    hooks = Hooks(on_log=lambda steps, rows: logged.append(steps),
                  on_epoch=lambda epoch, step, g, timing: hooks_seen.append((epoch, step)),
                  on_eval=lambda step, g: evaluated.append((step, g.training)) or g.eval() and None)
    run1 = fit(params, params.variant("final"), images, torch.device("cpu"), seed=0, hooks=hooks)
    g1, h1 = run1.g, history_frame(run1)
    assert list(h1["step"]) == list(range(1, params.train.max_steps + 1))
    assert [s for chunk in logged for s in chunk] == list(h1["step"])
    assert max(len(c) for c in logged) == params.train.log_every  # one host read per log_every steps
    assert hooks_seen[-1][1] == params.train.max_steps
    assert evaluated == [(5, True), (10, True), (12, True)]  # every eval_every steps and at the end, in train mode
    run2 = fit(params, params.variant("final"), images, torch.device("cpu"), seed=0)
    g2, h2 = run2.g, history_frame(run2)
    assert h1.equals(h2)
    assert all(torch.equal(a, b) for a, b in zip(g1.state_dict().values(), g2.state_dict().values()))
    h3 = history_frame(fit(params, params.variant("final"), images, torch.device("cpu"), seed=1))
    assert not h1.equals(h3)  # another seed is another run


def test_batch_larger_than_dataset_is_a_config_error(params, images):
    from dataclasses import replace

    big = replace(params, train=replace(params.train, batch_size=1000))  # more than the 512 images
    with pytest.raises(ConfigError, match=r"train\.batch_size: 1000 is larger than the training set \(512 images\)"):
        fit(big, big.variant("baseline"), images, torch.device("cpu"))


def test_pixel_conversion_round_trips():
    u = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    for rng in ((-1.0, 1.0), (0.0, 1.0)):
        x = to_pixels(u, rng)
        assert x.min() == rng[0] and x.max() == rng[1]
        assert torch.equal(to_uint8(x, rng), u)


def test_checkpoint_rebuilds_models_alone(params, tmp_path):
    g_spec, d_spec = gan_specs(params, params.variant("improved"), channels=1)
    g, d = Generator(g_spec).eval(), Discriminator(d_spec).eval()
    save_gan(tmp_path / "ckpt.pt", g, d, variant="improved")
    g2, d2 = load_generator(tmp_path / "ckpt.pt"), load_discriminator(tmp_path / "ckpt.pt")
    assert g2.spec == g_spec and d2.spec == d_spec
    z = torch.randn(4, g_spec.latent_dim)
    assert torch.equal(g(z), g2(z))
    assert torch.equal(d(g(z)), d2(g(z)))


def test_corrupt_or_missing_checkpoint_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_generator(bad)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_generator(tmp_path / "missing.pt")


def test_speed_switches_train_on_cpu_with_the_same_step(params, images):
    """amp (bf16 autocast) and channels_last run the real loop; off by default on CPU (see speed.py)."""
    from dataclasses import replace

    from dcgan_lab import speed

    cpu = torch.device("cpu")
    auto = replace(params.train, amp=None, channels_last=None, compile=None)
    assert (speed.precision(auto, cpu).dtype, speed.channels_last(auto, cpu)) == (None, False)
    fast = replace(params, train=replace(params.train, amp=True, channels_last=True, max_steps=2, eval_every=0))
    assert speed.precision(fast.train, cpu).dtype == torch.bfloat16
    run = fit(fast, fast.variant("final"), images, cpu)
    assert run.g.net[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert history_frame(run)[list(STAT_NAMES)].notna().all().all()


def test_fp16_loss_scaling_steps_both_optimizers(params, images):
    from dcgan_lab.speed import Precision

    g_spec, d_spec = gan_specs(params, params.variant("improved"), channels=1)
    g, d = Generator(g_spec), Discriminator(d_spec)
    opt_g, opt_d = torch.optim.Adam(g.parameters()), torch.optim.Adam(d.parameters())
    prec = Precision(torch.bfloat16, "cpu", torch.amp.GradScaler("cpu", init_scale=1024.0),
                     torch.amp.GradScaler("cpu", init_scale=1024.0))
    g0 = copy.deepcopy(g.state_dict())
    stats = train_step(g, d, opt_g, opt_d, to_pixels(images[:16], params.data.pixel_range),
                       torch.randn(16, g_spec.latent_dim), lambda x: x, "bce", prec=prec)
    assert all(torch.isfinite(v) for v in stats.values())
    assert prec.scaler_d.get_scale() == 1024.0 and prec.scaler_g.get_scale() == 1024.0  # no overflow, no skip
    assert any(not torch.equal(w, g0[k]) for k, w in g.state_dict().items() if w.is_floating_point())
    assert set(prec.state_dict()) == {"d", "g"} and prec.state_dict()["d"]["scale"] == 1024.0
