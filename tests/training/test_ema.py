"""The EMA of G's weights: parameters averaged with warm-up, buffers copied, off when the decay is 0."""

from __future__ import annotations

import torch

from dcgan_lab.gan.models import Generator, specs_from_params
from dcgan_lab.training.ema import EMA
from dcgan_lab.training.loop import fit
from helpers import spec, with_train

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
