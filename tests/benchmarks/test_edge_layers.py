"""edge_layers.py times the study's four edge convolutions against their matrix-product forms: the forms must
compute the convolutions (outputs and both gradients, to fp32 rounding) on the default study's real shapes."""

import sys

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
