"""The speed switches (amp, channels_last, compile): null means on for CUDA, off for CPU; on, they run the
same loop, and fp16 loss scaling steps both optimizers."""

from __future__ import annotations

import copy
from dataclasses import replace

import torch

from dcgan_lab.gan.models import Discriminator, Generator, specs_from_params
from dcgan_lab.gan.pixels import to_pixels
from dcgan_lab.training import speed
from dcgan_lab.training.loop import fit, history_frame
from dcgan_lab.training.speed import Precision
from dcgan_lab.training.step import STAT_NAMES, train_step


def test_speed_switches_train_on_cpu_with_the_same_step(params, images):
    """amp (bf16 autocast) and channels_last run the real loop; off by default on CPU (see speed.py)."""
    cpu = torch.device("cpu")
    auto = replace(params.train, amp=None, channels_last=None, compile=None)
    assert (speed.precision(auto, cpu).dtype, speed.channels_last(auto, cpu)) == (None, False)
    fast = replace(params, train=replace(params.train, amp=True, channels_last=True, max_steps=2, eval_every=0))
    assert speed.precision(fast.train, cpu).dtype == torch.bfloat16
    run = fit(fast, fast.variant("final"), images, cpu)
    assert run.g.net[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert history_frame(run)[list(STAT_NAMES)].notna().all().all()


def test_fp16_loss_scaling_steps_both_optimizers(params, images):
    g_spec, d_spec = specs_from_params(params, params.variant("improved"), channels=1)
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


def test_compile_is_off_on_cpu_unless_asked_and_the_saved_module_stays_plain(params):
    cpu = torch.device("cpu")
    module = torch.nn.Linear(2, 2)
    assert speed.maybe_compile(module, replace(params.train, compile=None), cpu) is module
    assert speed.maybe_compile(module, replace(params.train, compile=False), cpu) is module
    compiled = speed.maybe_compile(module, replace(params.train, compile=True), cpu)
    assert compiled is not module and compiled._orig_mod is module  # torch.compile wraps, the weights are shared
    fp32 = speed.precision(replace(params.train, amp=False), cpu)
    assert fp32.dtype is None and fp32.state_dict() == {"d": None, "g": None}
