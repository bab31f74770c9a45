"""Images from a generator: seeded uint8 samples in batches, and the fixed-noise grid."""

import torch

from dcgan_lab.gan.models import Generator, GeneratorSpec
from dcgan_lab.gan.sampling import generate, generate_from, latent_noise, latent_walk, sample_grid


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


def test_latent_noise_draws_each_sample_alone_and_truncation_bounds_it():
    z = latent_noise(64, 100, seed=5)
    assert z.shape == (64, 100) and z.dtype == torch.float32
    assert torch.equal(latent_noise(1, 100, seed=5)[0], z[0])  # the first sample whatever n is
    assert torch.equal(latent_noise(10, 100, seed=5), z[:10]) and not torch.equal(latent_noise(1, 100, 6)[0], z[0])
    t = latent_noise(64, 100, seed=5, truncation=0.5)
    assert t.abs().max() <= 0.5 and z.abs().max() > 2 and t.std() > 0.2
    assert torch.equal(t, latent_noise(64, 100, seed=5, truncation=0.5))
    assert latent_noise(0, 8, seed=0).shape == (0, 8)


def test_latent_walk_goes_from_one_end_to_the_other_on_a_line_or_a_great_circle():
    z0, z1 = latent_noise(2, 64, seed=0)
    line, arc = latent_walk(z0, z1, 7), latent_walk(z0, z1, 7, spherical=True)
    for walk in (line, arc):
        assert walk.shape == (7, 64) and torch.allclose(walk[0], z0) and torch.allclose(walk[-1], z1, atol=1e-5)
    assert torch.allclose(line[3], (z0 + z1) / 2, atol=1e-6)
    assert arc.norm(dim=1).min() > line.norm(dim=1).min()  # slerp does not cut through the low-norm middle
    assert torch.allclose(latent_walk(z0, 2 * z0, 3, spherical=True)[1], 1.5 * z0)  # parallel ends: the line


def test_generate_from_is_g_in_eval_mode_as_uint8():
    torch.manual_seed(0)
    g = Generator(GeneratorSpec(16, 8, 32, 1, "relu", True, "tanh")).train()
    z = latent_noise(5, 16, seed=1)
    images = generate_from(g, z, batch_size=2)
    assert images.shape == (5, 1, 32, 32) and images.dtype == torch.uint8 and not g.training
    with torch.no_grad():
        assert torch.equal(images, ((g(z) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8))


def test_a_conditional_grid_has_one_row_per_class_with_the_same_noise_in_each_column():
    from dcgan_lab.gan.models import Generator, GeneratorSpec
    from dcgan_lab.gan.sampling import sample_grid

    torch.manual_seed(0)
    g = Generator(GeneratorSpec(8, 8, 16, 1, "relu", True, "tanh", n_classes=3))
    z = torch.randn(16, 8)
    grid = sample_grid(g, z)
    assert grid.shape == (3, 3 * 18 + 2, 4 * 18 + 2)  # 3 classes x 4 columns of 16 px + padding
    with torch.no_grad():
        row1 = g.eval()(z[:4], torch.full((4,), 1))
    tile = grid[0, 18 + 2 : 18 + 2 + 16, 18 + 2 : 18 + 2 + 16]  # class 1, column 1
    from dcgan_lab.gan.pixels import to_uint8

    assert torch.equal(tile, to_uint8(row1, g.spec.pixel_range)[1, 0])


def test_labels_in_proportion_follow_the_class_shares_exactly():
    from dcgan_lab.gan.sampling import labels_in_proportion

    labels = labels_in_proportion(10, torch.tensor([1.0, 1.0, 2.0]))
    assert labels.tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 2, 2] or torch.bincount(labels).tolist() in ([3, 2, 5], [2, 3, 5])
    assert torch.bincount(labels_in_proportion(1000, torch.tensor([980.0, 1135, 1032]))).tolist() == [311, 361, 328]
