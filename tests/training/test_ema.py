"""The EMA of G's weights: parameters averaged with warm-up, buffers copied, off when the decay is 0; and
standing statistics, batch-norm statistics of the EMA generator's own."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from dcgan_lab.core.params import parse_params
from dcgan_lab.gan.models import Generator, specs_from_params
from dcgan_lab.training.ema import EMA, standing_statistics
from dcgan_lab.training.loop import fit
from helpers import random_images, shrink, spec, with_train

CPU = torch.device("cpu")


def test_ema_follows_the_weights_and_copies_batch_norm_buffers(params):
    g_spec, _ = specs_from_params(params, params.variant("final"), channels=1)
    g = Generator(g_spec)
    ema = EMA(g, decay=0.9)
    before = {k: v.clone() for k, v in ema.model.state_dict().items()}
    with torch.no_grad():
        for w in g.parameters():
            w.add_(1.0)
        for name, b in g.named_buffers():
            if b.is_floating_point():
                b.add_(2.0)
    ema.update(g, step=100)  # past warm-up: decay 0.9
    live = dict(g.named_parameters())
    for name, w in ema.model.named_parameters():
        assert torch.allclose(w, 0.9 * before[name] + 0.1 * live[name])
    for name, b in ema.model.named_buffers():
        assert torch.equal(b, dict(g.named_buffers())[name])  # running statistics are copied
    assert not any(w.requires_grad for w in ema.model.parameters())
    prev = {k: v.clone() for k, v in ema.model.named_parameters()}
    ema.update(g, step=0)  # warm-up: decay min(0.9, (1 + 0) / (10 + 0)) = 0.1, mostly the live weights
    for name, w in ema.model.named_parameters():
        assert torch.allclose(w, 0.1 * prev[name] + 0.9 * live[name])


def test_ema_off_when_decay_is_zero(params, images):
    run = fit(spec(with_train(params, ema_decay=0.0, max_steps=2), "baseline"), images, CPU)
    assert run.ema is None


def trained_ema(params, variant: str) -> Generator:
    """The EMA generator after a few real steps: weights apart from the live G's (the warm-up's decay is 0.5
    at step 8), and batch-norm statistics copied from the live G."""
    n_classes = 10 if params.variant(variant).conditional else 0
    images = random_images(256)
    labels = torch.arange(len(images)) % 10 if n_classes else None
    run = fit(spec(with_train(params, max_steps=8, eval_every=0), variant, n_classes=n_classes), images, CPU,
              labels=labels)
    return run.ema.model


@pytest.fixture(scope="module")
def final_ema(raw_params) -> Generator:
    """final's trained EMA generator, trained once for this module; each test takes a copy."""
    return trained_ema(parse_params(shrink(raw_params)), "final")


def batch_norms(g: nn.Module) -> list[nn.BatchNorm2d]:
    return [m for m in g.modules() if isinstance(m, nn.BatchNorm2d)]


@pytest.mark.parametrize("variant", ["final", "cgan_cbn"])  # plain batch norm; conditional batch norm
def test_standing_statistics_are_those_of_the_ema_generators_own_activations(params, final_ema, variant):
    g = copy.deepcopy(final_ema) if variant == "final" else trained_ema(params, variant)
    norms = batch_norms(g)
    copied = [(m.running_mean.clone(), m.running_var.clone()) for m in norms]
    seen = {m: [] for m in norms}  # each layer's input, (B, C, H, W), one per batch
    hooks = [m.register_forward_pre_hook(lambda m, args: seen[m].append(args[0].double())) for m in norms]
    standing_statistics(g, n_batches=4, batch_size=32, seed=3, device=CPU)
    for hook in hooks:
        hook.remove()
    for m, (copied_mean, copied_var) in zip(norms, copied):
        x = torch.stack(seen[m]).transpose(1, 2).flatten(2)  # (batches, C, B*H*W)
        assert len(x) == 4
        # With momentum None, batch norm averages each batch's mean and unbiased variance with equal weight.
        mean, var = x.mean(2).mean(0), x.var(2, correction=1).mean(0)
        torch.testing.assert_close(m.running_mean.double(), mean, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(m.running_var.double(), var, rtol=1e-5, atol=1e-6)
        assert not torch.allclose(copied_mean.double(), mean, rtol=1e-2, atol=1e-3)  # the live G's: not these
        assert not torch.allclose(copied_var.double(), var, rtol=1e-2, atol=1e-3)


def test_standing_statistics_are_seeded(final_ema):
    g = final_ema
    a, b, c = (standing_statistics(copy.deepcopy(g), 3, 32, seed, CPU) for seed in (7, 7, 8))
    assert all(torch.equal(x, y) for x, y in zip(a.buffers(), b.buffers()))
    assert not torch.equal(a.net[1].running_mean, c.net[1].running_mean)  # other noise, other estimates


def test_standing_statistics_restore_each_momentum_and_leave_g_frozen(final_ema):
    g = copy.deepcopy(final_ema)
    before = {k: v.clone() for k, v in g.named_parameters()}
    batch_norms(g)[0].momentum = 0.3  # not the default: restored as it was
    g.train()
    standing_statistics(g, 2, 32, 0, CPU)
    assert [m.momentum for m in batch_norms(g)] == [0.3] + [0.1] * (len(batch_norms(g)) - 1)
    assert not g.training and not any(m.training for m in g.modules())
    assert all(int(m.num_batches_tracked) == 2 for m in batch_norms(g))
    assert all(torch.equal(w, before[k]) for k, w in g.named_parameters())  # weights untouched


def test_standing_statistics_leave_a_generator_without_batch_norm_untouched(params):
    g_spec, _ = specs_from_params(params, params.variant("baseline"), channels=1)
    g = Generator(g_spec).train()
    before = {k: v.clone() for k, v in g.state_dict().items()}
    assert standing_statistics(g, 4, 32, 0, CPU) is g
    assert g.training and all(torch.equal(v, before[k]) for k, v in g.state_dict().items())
