import torch

from dcgan_lab.core.config import AugmentConfig
from dcgan_lab.gan.augment import color, cutout, flip, make_augment, translate


def test_all_augmentations_keep_shape_and_pass_gradients():
    cfg = AugmentConfig(translation=0.125, cutout=0.5, color=True, flip=True)
    aug = make_augment(cfg, (-1.0, 1.0), torch.Generator().manual_seed(0))
    x = torch.rand(6, 3, 32, 32, requires_grad=True)
    y = aug(x)
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_off_is_identity_and_seeded_is_repeatable():
    x = torch.rand(4, 1, 16, 16)
    assert make_augment(AugmentConfig(), (-1.0, 1.0))(x) is x
    cfg = AugmentConfig(translation=0.25, cutout=0.5)
    a = make_augment(cfg, (-1.0, 1.0), torch.Generator().manual_seed(3))(x)
    b = make_augment(cfg, (-1.0, 1.0), torch.Generator().manual_seed(3))(x)
    assert torch.equal(a, b) and not torch.equal(a, x)


def test_translate_moves_content_and_fills_with_background():
    x = torch.full((64, 1, 8, 8), -1.0)
    x[:, :, 3:5, 3:5] = 1.0  # a bright square in the middle
    y = translate(x, 0.25, fill=-1.0, gen=torch.Generator().manual_seed(0))
    assert torch.allclose(y.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)))  # shifted by <= 2 px: nothing lost
    moved = (y != x).flatten(1).any(1)
    assert moved.float().mean() > 0.5


def test_cutout_erases_a_square_of_the_given_size():
    x = torch.ones(32, 1, 16, 16)
    y = cutout(x, 0.5, fill=0.0, gen=torch.Generator().manual_seed(0))
    erased = (y == 0).flatten(1).sum(1)
    assert erased.max() == 64 and erased.min() >= 16  # 8x8 square, at most half of it over the border


def test_flip_mirrors_about_half_the_images_and_color_keeps_grey_images_grey():
    x = torch.arange(16.0).view(1, 1, 4, 4).expand(64, 1, 4, 4)
    y = flip(x, torch.Generator().manual_seed(0))
    mirrored = torch.tensor([torch.equal(a, x[0].flip(2)) for a in y])
    assert all(torch.equal(a, x[0]) or m for a, m in zip(y, mirrored)) and 16 < int(mirrored.sum()) < 48
    grey = torch.rand(8, 3, 8, 8).mean(1, keepdim=True).expand(8, 3, 8, 8)
    jittered = color(grey, 2.0, torch.Generator().manual_seed(0))
    assert not torch.equal(jittered, grey)
    assert torch.allclose(jittered[:, 0], jittered[:, 1]) and torch.allclose(jittered[:, 1], jittered[:, 2])
