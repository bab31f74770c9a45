"""The disturbances the feature space is tested with, as Heusel et al. (2017, Fig. 1) disturbed CelebA to show
that FID rises with the disturbance: pure, seeded functions of uint8 images (N, C, S, S) (and their labels) that
return uint8 images, worse by a level. Level 0 is the undisturbed images, returned as they are.

Each disturbance is nested in its level: the same seed draws the same noise, positions, classes and images at every
level, and a higher level only adds to them (more noise, more rectangles, fewer classes), so the levels differ by
the disturbance alone, not by a new draw.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

# The protocol: each disturbance's levels, level 0 first. Fixed here and not in params.yaml, because they define what
# the check means (a config key would also rerun every stage, core/config.py); metrics/extractor.json records them.
# Chosen so that level 1 is mild (a digit a person still reads at once) and the last is severe, on 32 px digits.
NOISE_SIGMAS = (0.0, 0.05, 0.1, 0.2, 0.4)  # std of the added Gaussian noise, pixels in [0, 1], then clamped
BLUR_SIGMAS = (0.0, 0.5, 1.0, 1.5, 2.0)  # std of the Gaussian kernel, in pixels
RECTANGLE_COUNTS = (0, 1, 2, 3, 4)  # black squares, a quarter of the image side each, anywhere in the image
SALT_PEPPER_FRACTIONS = (0.0, 0.02, 0.05, 0.1, 0.2)  # share of the pixels set to black or white (half each)
ELASTIC_ALPHAS = (0.0, 25.0, 50.0, 100.0, 200.0)  # ElasticTransform's alpha: its default, 50, moves ~1 px at 32 px
ELASTIC_SIGMA = 4.0  # smoothness of the displacement field in pixels, as Simard et al. (2003) warped MNIST
KEPT_CLASS_SHARES = (1.0, 0.8, 0.6, 0.4, 0.2)  # share of the classes kept: 10, 8, 6, 4, 2 of MNIST's 10
COLLAPSE_SHARES = (1.0, 0.5, 0.1, 0.01, 0.001)  # distinct images kept, as a share of the n images


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@contextmanager
def one_thread() -> Iterator[None]:
    """One intra-op thread for loops over single images: on tensors this small, threads that wait on each other
    while other processes hold the cores cost far more than they give (benchmarks/RESULTS.md)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def gaussian_noise(images: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    """Pixels in [0, 1] plus N(0, sigma^2) noise, clamped to [0, 1]."""
    if sigma == 0:
        return images
    noise = torch.randn(images.shape, generator=_generator(seed))
    noisy = F.to_dtype(images, torch.float32, scale=True) + sigma * noise
    return F.to_dtype(noisy.clamp(0, 1), torch.uint8, scale=True)


def gaussian_blur(images: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    """torchvision's Gaussian blur with std `sigma` px, the kernel 3 sigma wide each side (no randomness: `seed`
    is taken for the common signature only)."""
    if sigma == 0:
        return images
    size = 2 * math.ceil(3 * sigma) + 1
    return F.gaussian_blur(images, [size, size], [sigma, sigma])


def black_rectangles(images: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """`count` black squares of side S/4 per image, each placed uniformly at random (torchvision's erase); square r
    of an image is in the same place at every count > r."""
    if count == 0:
        return images
    n, _, size, _ = images.shape
    side = size // 4
    g = _generator(seed)
    corners = [torch.randint(0, size - side + 1, (n, 2), generator=g).tolist() for _ in range(count)]
    out, black = images.clone(), torch.zeros((1, 1, 1), dtype=images.dtype)
    for i in range(n):
        for square in corners:
            top, left = square[i]
            F.erase(out[i], top, left, side, side, black, inplace=True)
    return out


def salt_and_pepper(images: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """A share `fraction` of the pixels set to black or white, half each (every channel of a pixel alike)."""
    if fraction == 0:
        return images
    g = _generator(seed)
    n, _, height, width = images.shape
    hit = torch.rand((n, 1, height, width), generator=g) < fraction
    white = torch.rand((n, 1, height, width), generator=g) < 0.5
    return torch.where(hit, (white * 255).to(images.dtype), images)


def elastic_warp(images: torch.Tensor, alpha: float, seed: int) -> torch.Tensor:
    """torchvision's ElasticTransform(alpha, sigma=ELASTIC_SIGMA), a displacement field of its own for each image.
    It draws from torch's global RNG: seeded inside fork_rng, so the caller's stream is left as it was, and every
    alpha gets the same fields, scaled."""
    if alpha == 0:
        return images
    warp = v2.ElasticTransform(alpha=alpha, sigma=ELASTIC_SIGMA)
    with torch.random.fork_rng(devices=[]), one_thread():
        torch.manual_seed(seed)
        return torch.stack([warp(image) for image in images])


def class_order(labels: torch.Tensor, seed: int) -> torch.Tensor:
    """The classes present in `labels` in a seeded order: mode dropping keeps the first k of them."""
    classes = labels.unique()
    return classes[torch.randperm(len(classes), generator=_generator(seed))]


def kept_class_counts(n_classes: int) -> tuple[int, ...]:
    """How many classes each level of mode dropping keeps, all of them first: 10, 8, 6, 4, 2 of 10."""
    return tuple(sorted({max(1, round(n_classes * share)) for share in KEPT_CLASS_SHARES}, reverse=True))


def dropping_indices(labels: torch.Tensor, kept: int, seed: int, smallest: int) -> torch.Tensor:
    """Which images mode dropping keeps: drawn without replacement from those of the first `kept` classes of
    class_order, as many at every level as the `smallest` classes have (so that FID's sample size stays the same),
    in the split's order."""
    order = class_order(labels, seed)
    n = int(torch.isin(labels, order[:smallest]).sum())
    pool = torch.isin(labels, order[:kept]).nonzero().squeeze(1)
    return pool[torch.randperm(len(pool), generator=_generator(seed + 1))[:n]].sort().values


def mode_dropping(images: torch.Tensor, labels: torch.Tensor, kept: int, seed: int, smallest: int) -> torch.Tensor:
    """The images of `kept` classes only, as many as the `smallest` classes have (dropping_indices)."""
    return images[dropping_indices(labels, kept, seed, smallest)]


def collapse_indices(n: int, m: int, seed: int) -> torch.Tensor:
    """m distinct images of n (a seeded choice: fewer distinct images are a subset of more), repeated to n."""
    distinct = torch.randperm(n, generator=_generator(seed))[:m]
    return distinct[torch.arange(n) % m]


def mode_collapse(images: torch.Tensor, m: int, seed: int) -> torch.Tensor:
    """The images replaced by `m` distinct ones of them, each repeated, n in all; m = n is the images themselves."""
    return images if m >= len(images) else images[collapse_indices(len(images), m, seed)]


def collapse_counts(n: int) -> tuple[int, ...]:
    """The distinct images each level of mode collapse keeps: n, n/2, n/10, n/100, n/1000 (at least one)."""
    return tuple(max(1, round(n * share)) for share in COLLAPSE_SHARES)


@dataclass(frozen=True)
class Disturbance:
    name: str
    parameter: str  # what a level's value is
    levels: tuple  # level 0, the undisturbed images, first
    apply: Callable[[torch.Tensor, torch.Tensor, float, int], torch.Tensor]  # (images, labels, level, seed) -> images
    subset: bool = False  # every level is a subset of the images, level 0 too: its level 0 is scored, not the floor


def disturbances(n: int, n_classes: int) -> tuple[Disturbance, ...]:
    """Every disturbance of the protocol, for n images of n_classes classes."""
    kept = kept_class_counts(n_classes)
    return (
        Disturbance("gaussian_noise", "std of the added noise (pixels in [0, 1])", NOISE_SIGMAS,
                    lambda x, y, level, seed: gaussian_noise(x, level, seed)),
        Disturbance("gaussian_blur", "std of the blur kernel (px)", BLUR_SIGMAS,
                    lambda x, y, level, seed: gaussian_blur(x, level)),
        Disturbance("black_rectangles", "black squares of side S/4 per image", RECTANGLE_COUNTS,
                    lambda x, y, level, seed: black_rectangles(x, level, seed)),
        Disturbance("salt_and_pepper", "share of the pixels set black or white", SALT_PEPPER_FRACTIONS,
                    lambda x, y, level, seed: salt_and_pepper(x, level, seed)),
        Disturbance("elastic_warp", f"ElasticTransform alpha (sigma {ELASTIC_SIGMA:g} px)", ELASTIC_ALPHAS,
                    lambda x, y, level, seed: elastic_warp(x, level, seed)),
        Disturbance("mode_dropping", "classes kept", kept,
                    lambda x, y, level, seed: mode_dropping(x, y, level, seed, smallest=kept[-1]), subset=True),
        Disturbance("mode_collapse", "distinct images (repeated to n)", collapse_counts(n),
                    lambda x, y, level, seed: mode_collapse(x, level, seed)),
    )
