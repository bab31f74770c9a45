"""Pixels: uint8 images <-> floats in `data.pixel_range`, and which output squashing G needs for it.

The one table below maps a pixel range to G's output layer and back, so the config side (building G)
and the checkpoint side (reading G's images) cannot disagree.
"""

from __future__ import annotations

import torch

# data.pixel_range -> G's output layer (Radford et al. use tanh for [-1, 1]; [0, 1] needs a sigmoid).
OUTPUT_FOR_RANGE: dict[tuple[float, float], str] = {(-1.0, 1.0): "tanh", (0.0, 1.0): "sigmoid"}


def output_for(pixel_range: tuple[float, float]) -> str:
    return OUTPUT_FOR_RANGE[tuple(pixel_range)]


def pixel_range_for(output: str) -> tuple[float, float]:
    (pixel_range,) = [r for r, o in OUTPUT_FOR_RANGE.items() if o == output]
    return pixel_range


def to_pixels(images: torch.Tensor, pixel_range: tuple[float, float]) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float in pixel_range."""
    low, high = pixel_range
    return images.float().mul_((high - low) / 255.0).add_(low)


def to_uint8(images: torch.Tensor, pixel_range: tuple[float, float]) -> torch.Tensor:
    """float in pixel_range -> uint8 (B, C, H, W), rounded and clamped."""
    low, high = pixel_range
    return ((images - low) * (255.0 / (high - low))).round_().clamp_(0, 255).to(torch.uint8)
