"""Images from a generator: seeded uint8 samples in batches, and the fixed-noise grid."""

import torch

from dcgan_lab.gan.models import Generator, GeneratorSpec
from dcgan_lab.gan.sampling import generate, sample_grid


def test_generate_is_seeded_uint8():
    g = Generator(GeneratorSpec(16, 8, 32, 1, "relu", True, "sigmoid")).eval()
    a = generate(g, 10, seed=3, batch_size=4, device=torch.device("cpu"))
    assert a.shape == (10, 1, 32, 32) and a.dtype == torch.uint8
    assert torch.equal(a, generate(g, 10, seed=3, batch_size=10, device=torch.device("cpu")))
    assert not torch.equal(a, generate(g, 10, seed=4, batch_size=4, device=torch.device("cpu")))


def test_sample_grid_is_the_eval_mode_samples_and_restores_training_mode():
    torch.manual_seed(0)
    g = Generator(GeneratorSpec(16, 8, 32, 1, "relu", True, "tanh")).train()  # batch norm: modes differ
    z = torch.randn(16, 16)
    grid = sample_grid(g, z)
    assert g.training  # the loop goes on training
    assert grid.dtype == torch.uint8 and grid.shape == (3, 4 * 34 + 2, 4 * 34 + 2)  # 4x4, 2 px padding
    with torch.no_grad():
        first = ((g.eval()(z[:1]) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)[0, 0]
    assert torch.equal(grid[0, 2:34, 2:34], first) and torch.equal(grid[1, 2:34, 2:34], first)
    assert (grid[:, :2] == 255).all()  # white padding between the samples
