"""edge_layers.py times the study's four edge convolutions against their matrix-product forms: the forms must
compute the convolutions (outputs and both gradients, to fp32 rounding) on the default study's real shapes, and the
in-step arms must time the same networks."""

import sys

import pytest
import torch

from dcgan_lab.core.params import load_params
from dcgan_lab.gan.models import Discriminator, Generator, specs_from_params
from helpers import ROOT

sys.path.insert(0, str(ROOT))  # benchmarks/ is not an installed package
from benchmarks import edge_layers  # noqa: E402


def conv_weights(model: torch.nn.Module) -> list[tuple[int, ...]]:
    return [tuple(m.weight.shape) for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]


def test_its_layers_are_the_default_studys_edge_layers_and_the_matmul_forms_compute_them(capsys):
    params = load_params(ROOT / "params.yaml")
    g_spec, d_spec = specs_from_params(params, params.variant("final"), channels=1)
    g, d = conv_weights(Generator(g_spec)), conv_weights(Discriminator(d_spec))
    assert [w for _, _, _, w in edge_layers.layers(64)] == [g[0], g[-1], d[0], d[-1]]
    assert [x[1:] for _, _, x, _ in edge_layers.layers(64)] == [
        (g_spec.latent_dim, 1, 1), (g[-1][0], 16, 16), (1, 32, 32), (d[-1][1], 4, 4)]

    edge_layers.main(["--batch", "8", "--repeats", "1", "--iters", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("edge layers, forward + backward, batch 8, channels_last")
    rows = [line.rsplit(None, 4) for line in lines[2:6]]
    assert [r[0].strip() for r in rows] == [name for name, *_ in edge_layers.layers(8)]
    assert all(float(r[-1]) < 1e-4 for r in rows)  # outputs and gradients agree to fp32 rounding
    assert all(float(r[1]) > 0 and float(r[2]) > 0 for r in rows) and lines[6].split()[:2] == ["all", "four"]


def forward_backward(module, x, forward=None):
    module.zero_grad()
    x = x.detach().clone().requires_grad_()
    out = (forward or module)(x)
    out.backward(torch.linspace(-1, 1, out.numel()).view(out.shape))
    return out, x.grad, module.weight.grad, None if module.bias is None else module.bias.grad


@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last], ids=["nchw", "nhwc"])
@pytest.mark.parametrize("form,layer,shape", [
    ("g_input", lambda: torch.nn.ConvTranspose2d(100, 128, 4, 1, 0), (6, 100, 1, 1)),
    ("g_input", lambda: torch.nn.ConvTranspose2d(24, 16, 4, 1, 0, bias=False), (6, 24, 1, 1)),
    ("d_head", lambda: torch.nn.Conv2d(128, 1, 4, 1, 0), (6, 128, 4, 4)),
    ("d_input", lambda: torch.nn.Conv2d(1, 32, 4, 2, 1), (6, 1, 32, 32)),
    ("d_input", lambda: torch.nn.Conv2d(1, 16, 4, 2, 1, bias=False), (6, 1, 64, 64)),
], ids=["g-input", "g-input-nobias", "d-head", "d-input", "d-input-64px-nobias"])
def test_each_forward_form_gives_the_convolutions_output_gradients_and_strides(form, layer, shape, fmt):
    torch.manual_seed(0)
    m = layer().to(memory_format=fmt)
    x = torch.randn(shape).to(memory_format=fmt)
    forward = {"g_input": edge_layers.g_input_forward, "d_head": edge_layers.d_head_forward,
               "d_input": edge_layers.d_input_forward}[form]
    got, want = forward_backward(m, x, lambda t: forward(m, t)), forward_backward(m, x)
    assert got[0].stride() == want[0].stride()  # the next layer sees the layout it would have seen
    assert got[0]._base is None  # a tensor of its own: an in-place activation on it costs no CopySlices
    for g, w in zip(got, want):
        if w is not None:
            torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5 * float(w.abs().max()))


def test_in_step_times_three_arms_on_the_same_weights_and_leaves_torchs_forward_in_place(capsys):
    rows = edge_layers.in_step("final", batch=8, repeats=1, iters=1)
    assert [r["arm"] for r in rows] == list(edge_layers.ARMS)
    assert rows[0]["speedup"] == 1.0 and all(r["ms_per_step"] > 0 for r in rows)
    assert all(r["max_relative_difference"] < 1e-4 for r in rows)  # the arms compute the same D
    g, d, *_ = edge_layers.step_models("final", 8)
    modules = edge_layers.edge_modules(g, d)
    assert [tuple(m.weight.shape) for m in modules.values()] == [(100, 128, 4, 4), (32, 1, 4, 4), (1, 128, 4, 4)]
    edge_layers.use_forms(modules, ("g_input", "d_head", "d_input"))
    assert all("forward" in m.__dict__ for m in modules.values())
    edge_layers.use_forms(modules, ())
    assert not any("forward" in m.__dict__ for m in modules.values())

    edge_layers.main(["--batch", "8", "--repeats", "1", "--iters", "1", "--in-step", "baseline", "--step-repeats",
                      "1", "--step-iters", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[7].startswith("in the step: baseline's G and D, batch 8") and len(lines) == 12
    assert [line.split()[0] for line in lines[9:]] == ["convolutions", "G", "and"]
