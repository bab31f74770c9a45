"""Differentiable augmentation (Zhao et al. 2020, "DiffAugment") for the discriminator's inputs.

Applied to real *and* fake images, on the device, with gradients flowing back to G.
Randomness comes from an explicit torch.Generator so runs are repeatable.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ..core.config import AugmentConfig

Augment = Callable[[torch.Tensor], torch.Tensor]


def _uniform(shape, x: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    return torch.rand(shape, device=x.device, dtype=x.dtype, generator=gen)


def color(x: torch.Tensor, span: float, gen: torch.Generator | None = None) -> torch.Tensor:
    """Brightness shift, saturation and contrast scaling, per image. `span` = pixel range width."""
    b = x.shape[0]
    x = x + (_uniform((b, 1, 1, 1), x, gen) - 0.5) * (span / 2)
    if x.shape[1] > 1:  # saturation only means something for colour images
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (_uniform((b, 1, 1, 1), x, gen) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform((b, 1, 1, 1), x, gen) + 0.5) + mean


def translate(x: torch.Tensor, ratio: float, fill: float, gen: torch.Generator | None = None) -> torch.Tensor:
    """Shift each image by up to ratio * side pixels in y and x, filling the gap with `fill`."""
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    if sh == 0 and sw == 0:
        return x
    dy = torch.randint(-sh, sh + 1, (b, 1, 1), device=x.device, generator=gen)
    dx = torch.randint(-sw, sw + 1, (b, 1, 1), device=x.device, generator=gen)
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    padded = F.pad(x, [sw, sw, sh, sh], value=fill)  # (B, C, h + 2sh, w + 2sw)
    rows, cols = gy + sh - dy, gx + sw - dx  # (B, h, w) indices into the padded image
    batch = torch.arange(b, device=x.device).view(b, 1, 1)
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, ratio: float, fill: float, gen: torch.Generator | None = None) -> torch.Tensor:
    """Erase one square of side ratio * side per image (it may hang over the border)."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    if ch == 0 or cw == 0:
        return x
    top = torch.randint(-(ch // 2), h - ch // 2, (b, 1, 1), device=x.device, generator=gen)
    left = torch.randint(-(cw // 2), w - cw // 2, (b, 1, 1), device=x.device, generator=gen)
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    inside = (gy >= top) & (gy < top + ch) & (gx >= left) & (gx < left + cw)  # (B, h, w)
    return torch.where(inside.unsqueeze(1), torch.full_like(x, fill), x)


def flip(x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    mask = _uniform((x.shape[0], 1, 1, 1), x, gen) < 0.5
    return torch.where(mask, x.flip(3), x)


def make_augment(
    cfg: AugmentConfig, pixel_range: tuple[float, float], gen: torch.Generator | None = None
) -> Augment:
    """The augmentation the config asks for, as one function of a batch; identity when all are off."""
    low, high = pixel_range
    # Translation and cutout fill with the range's minimum (black), i.e. the digits' background.

    def augment(x: torch.Tensor) -> torch.Tensor:
        if cfg.color:
            x = color(x, high - low, gen)
        if cfg.flip:
            x = flip(x, gen)
        if cfg.translation > 0:
            x = translate(x, cfg.translation, low, gen)
        if cfg.cutout > 0:
            x = cutout(x, cfg.cutout, low, gen)
        return x

    return augment if cfg.enabled else (lambda x: x)
