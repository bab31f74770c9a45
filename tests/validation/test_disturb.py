"""The disturbances: deterministic for a seed, uint8 in and out of the same shape, level 0 the images themselves,
nested in the level, and the mode disturbances keep the classes and the distinct images they say."""

import pytest
import torch

from dcgan_lab.validation.disturb import (
    ELASTIC_ALPHAS, black_rectangles, class_order, collapse_counts, collapse_indices, disturbances, dropping_indices,
    elastic_warp, gaussian_blur, gaussian_noise, kept_class_counts, mode_collapse, mode_dropping, salt_and_pepper,
)
from helpers import random_images

IMAGES = random_images(24)
LABELS = torch.arange(24) % 10  # classes 0-3 have 3 images, 4-9 have 2
SEEDED = {"gaussian_noise": gaussian_noise, "black_rectangles": black_rectangles, "salt_and_pepper": salt_and_pepper,
          "elastic_warp": elastic_warp}
ALL = {**SEEDED, "gaussian_blur": gaussian_blur}


@pytest.mark.parametrize("d", disturbances(24, 10), ids=lambda d: d.name)
def test_every_disturbance_is_seeded_keeps_uint8_and_its_last_level_changes_the_images(d):
    last = d.levels[-1]
    out = d.apply(IMAGES, LABELS, last, 3)
    assert out.dtype == torch.uint8 and out.shape[1:] == IMAGES.shape[1:]
    assert torch.equal(out, d.apply(IMAGES, LABELS, last, 3))  # the same seed, the same images
    assert not torch.equal(out, IMAGES[: len(out)])
    if not d.subset:
        assert out.shape == IMAGES.shape and d.apply(IMAGES, LABELS, d.levels[0], 3) is IMAGES  # level 0: identity
    assert list(d.levels) == sorted(d.levels, reverse=d.name.startswith("mode_"))  # levels get worse in order


@pytest.mark.parametrize("name", list(SEEDED))
def test_another_seed_draws_another_disturbance(name):
    level = {"black_rectangles": 2, "elastic_warp": 100.0}.get(name, 0.2)
    assert not torch.equal(SEEDED[name](IMAGES, level, 0), SEEDED[name](IMAGES, level, 1))


def test_noise_and_salt_and_pepper_are_nested_in_the_level():
    mild, strong = salt_and_pepper(IMAGES, 0.05, 0), salt_and_pepper(IMAGES, 0.3, 0)
    hit = mild != IMAGES
    assert hit.any() and torch.equal(strong[hit], mild[hit])  # every pixel hit at 0.05 is hit alike at 0.3
    assert set(strong[strong != IMAGES].tolist()) <= {0, 255}
    # the same noise, scaled: where the images are mid-grey (no clamping), the change grows with sigma
    grey = torch.full((4, 1, 8, 8), 128, dtype=torch.uint8)
    small, large = (gaussian_noise(grey, s, 0).float() - 128 for s in (0.05, 0.1))
    assert torch.corrcoef(torch.stack([small.flatten(), large.flatten()]))[0, 1] > 0.95


def test_black_rectangles_add_squares_of_a_quarter_side_where_the_fewer_were():
    white = torch.full((5, 1, 32, 32), 255, dtype=torch.uint8)
    one, three = black_rectangles(white, 1, 0), black_rectangles(white, 3, 0)
    assert ((one == 0).sum(dim=(1, 2, 3)) == 64).all()  # one 8 x 8 square per image
    assert (three[one == 0] == 0).all() and (three == 0).sum() > (one == 0).sum()


def test_blur_smooths_and_the_elastic_warp_leaves_torchs_rng_alone():
    assert gaussian_blur(IMAGES, 2.0).float().std() < gaussian_blur(IMAGES, 0.5).float().std() < IMAGES.float().std()
    torch.manual_seed(11)
    state, threads = torch.random.get_rng_state(), torch.get_num_threads()
    warped = elastic_warp(IMAGES, ELASTIC_ALPHAS[-1], 5)
    assert torch.equal(torch.random.get_rng_state(), state) and torch.get_num_threads() == threads
    assert torch.equal(warped, elastic_warp(IMAGES, ELASTIC_ALPHAS[-1], 5))


def test_mode_dropping_keeps_only_the_first_classes_of_a_seeded_order_with_equal_n_per_level():
    assert kept_class_counts(10) == (10, 8, 6, 4, 2) and kept_class_counts(3) == (3, 2, 1)
    order = class_order(LABELS, 4)
    assert sorted(order.tolist()) == list(range(10))
    smallest = int(torch.isin(LABELS, order[:2]).sum())  # the 2-class level takes all its images
    for kept in kept_class_counts(10):
        idx = dropping_indices(LABELS, kept, 4, smallest=2)
        assert len(idx) == smallest and len(idx.unique()) == len(idx)  # drawn without replacement
        assert set(LABELS[idx].tolist()) <= set(order[:kept].tolist())
    assert set(LABELS[dropping_indices(LABELS, 2, 4, smallest=2)].tolist()) == set(order[:2].tolist())
    assert torch.equal(mode_dropping(IMAGES, LABELS, 6, 4, 2), IMAGES[dropping_indices(LABELS, 6, 4, 2)])


def test_mode_collapse_repeats_m_distinct_images_to_n_nested_in_m():
    assert collapse_counts(5000) == (5000, 2500, 500, 50, 5) and collapse_counts(100)[-1] == 1
    for m in (12, 5, 1):
        out = mode_collapse(IMAGES, m, 2)
        assert out.shape == IMAGES.shape and len(out.flatten(1).unique(dim=0)) == m
    assert set(collapse_indices(24, 5, 2).tolist()) <= set(collapse_indices(24, 12, 2).tolist())
    assert mode_collapse(IMAGES, 24, 2) is IMAGES
