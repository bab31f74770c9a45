"""The speed switches (amp, channels_last, compile): null means on for CUDA, off for CPU; on, they run the
same loop (amp within bf16's precision of fp32), and fp16 loss scaling really scales, unscales and skips."""

from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import torch

from dcgan_lab.gan.models import Discriminator, Generator, specs_from_params
from dcgan_lab.gan.pixels import to_pixels
from dcgan_lab.training import speed
from dcgan_lab.training.loop import fit, history_frame
from dcgan_lab.training.speed import Precision
from dcgan_lab.training.step import Batch, stat_names, train_step
from helpers import spec


@contextmanager
def conv_output_dtypes():
    """The dtypes every convolution (of any module) returns while the block runs."""
    seen: set[torch.dtype] = set()

    def hook(module, inputs, output):
        if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            seen.add(output.dtype)

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def test_speed_switches_train_on_cpu_with_the_same_step(params, images):
    """amp (bf16 autocast) and channels_last run the real loop; off by default on CPU (see speed.py). Under amp
    the convolutions really run in bf16, and the losses are fp32's within bf16's precision."""
    cpu = torch.device("cpu")
    auto = replace(params.train, amp=None, channels_last=None, compile=None)
    assert (speed.precision(auto, cpu).dtype, speed.channels_last(auto, cpu)) == (None, False)
    fast = replace(params, train=replace(params.train, amp=True, channels_last=True, max_steps=2, eval_every=0))
    assert speed.precision(fast.train, cpu).dtype == torch.bfloat16
    with conv_output_dtypes() as amp_dtypes:
        run = fit(spec(fast, "final"), images, cpu)
    assert run.g.net[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert history_frame(run)[list(stat_names("bce"))].notna().all().all()
    fp32 = replace(fast, train=replace(fast.train, amp=False))
    with conv_output_dtypes() as fp32_dtypes:
        reference = fit(spec(fp32, "final"), images, cpu)  # same init, data, noise and augmentation
    assert (amp_dtypes, fp32_dtypes) == ({torch.bfloat16}, {torch.float32})
    amp_stats, fp32_stats = (history_frame(r)[list(stat_names("bce"))].to_numpy() for r in (run, reference))
    assert np.allclose(amp_stats, fp32_stats, rtol=0.02, atol=0.02), (amp_stats, fp32_stats)  # bf16: 8-bit mantissa
    assert not np.array_equal(amp_stats, fp32_stats)  # and not fp32 under another name
    for amp_w, fp32_w in zip(run.g.parameters(), reference.g.parameters()):
        assert amp_w.dtype == torch.float32  # autocast computes in bf16; the weights stay fp32
        torch.testing.assert_close(amp_w, fp32_w, rtol=0.02, atol=2e-3)  # two Adam steps of 2e-4 each: the same ones


def _fp16_step(params, images, scalers: bool, init_scale: float = 1024.0):
    """One step of fresh, seeded models under fp16 autocast on the CPU (torch autocasts fp16 there too), with a
    GradScaler per optimizer or without; returns (stats, g, d, prec)."""
    g_spec, d_spec = specs_from_params(params, params.variant("improved"), channels=1)
    torch.manual_seed(0)
    g, d = Generator(g_spec), Discriminator(d_spec)
    opt_g, opt_d = torch.optim.Adam(g.parameters()), torch.optim.Adam(d.parameters())
    prec = Precision(torch.float16, "cpu", *(torch.amp.GradScaler("cpu", init_scale=init_scale) for _ in range(2))
                     if scalers else ())
    z = torch.randn(16, g_spec.latent_dim, generator=torch.Generator().manual_seed(1))
    stats = train_step(g, d, opt_g, opt_d, [Batch(to_pixels(images[:16], params.data.pixel_range), z)], lambda x: x, "bce",
                       precision=prec)
    return stats, g, d, prec


def test_fp16_loss_scaling_steps_both_optimizers(params, images):
    g_spec, d_spec = specs_from_params(params, params.variant("improved"), channels=1)
    torch.manual_seed(0)
    g0 = copy.deepcopy(Generator(g_spec).state_dict())  # what _fp16_step starts from
    stats, g, d, prec = _fp16_step(params, images, scalers=True)
    assert all(torch.isfinite(v) for v in stats.values())
    assert prec.scaler_d.get_scale() == 1024.0 and prec.scaler_g.get_scale() == 1024.0  # no overflow, no skip
    assert any(not torch.equal(w, g0[k]) for k, w in g.state_dict().items() if w.is_floating_point())
    assert set(prec.state_dict()) == {"d", "g"} and prec.state_dict()["d"]["scale"] == 1024.0
    # get_scale() is init_scale for a scaler that never ran; update() after a finite step counts it (0 if unused).
    assert prec.scaler_d._get_growth_tracker() == 1 and prec.scaler_g._get_growth_tracker() == 1
    # The gradients were unscaled before the optimizers stepped: the same step without scalers has the same
    # gradients, not 1024 times smaller ones (up to fp16 underflow in the unscaled step, and D's update, which
    # that changes a little, under G's).
    _, g_plain, d_plain, _ = _fp16_step(params, images, scalers=False)
    for scaled, plain in ((d, d_plain), (g, g_plain)):
        a, b = (torch.cat([p.grad.flatten() for p in m.parameters()]) for m in (scaled, plain))
        assert 0.9 < a.norm() / b.norm() < 1.1 and torch.nn.functional.cosine_similarity(a, b, dim=0) > 0.99


def test_fp16_overflow_skips_both_updates_and_backs_the_scale_off(params, images):
    """A scale so large that the fp16 gradients overflow: each scaler skips its optimizer's step (the weights do
    not move) and halves its scale. With the scalers ignored, the weights would move."""
    g_spec, d_spec = specs_from_params(params, params.variant("improved"), channels=1)
    torch.manual_seed(0)
    g0, d0 = (copy.deepcopy(list(m.parameters())) for m in (Generator(g_spec), Discriminator(d_spec)))
    stats, g, d, prec = _fp16_step(params, images, scalers=True, init_scale=2.0**40)
    assert prec.scaler_d.get_scale() == 2.0**39 and prec.scaler_g.get_scale() == 2.0**39
    assert prec.scaler_d._get_growth_tracker() == 0 and prec.scaler_g._get_growth_tracker() == 0
    for before, model in ((g0, g), (d0, d)):
        assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before))
    assert all(torch.isfinite(v) for v in stats.values())  # the losses were fine: the scaled gradients were not


def test_compile_is_off_on_cpu_unless_asked_and_the_saved_module_stays_plain(params):
    cpu = torch.device("cpu")
    module = torch.nn.Linear(2, 2)
    assert speed.maybe_compile(module, replace(params.train, compile=None), cpu) is module
    assert speed.maybe_compile(module, replace(params.train, compile=False), cpu) is module
    compiled = speed.maybe_compile(module, replace(params.train, compile=True), cpu)
    assert compiled is not module and compiled._orig_mod is module  # torch.compile wraps, the weights are shared
    fp32 = speed.precision(replace(params.train, amp=False), cpu)
    assert fp32.dtype is None and fp32.state_dict() == {"d": None, "g": None}
