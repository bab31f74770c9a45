"""Images from a generator: seeded batches of uint8 samples, and the fixed-noise sample grid."""

from __future__ import annotations

import torch
from torchvision.utils import make_grid

from .models import Generator
from .pixels import to_uint8


@torch.inference_mode()
def generate(g: Generator, n: int, seed: int, batch_size: int, device: torch.device) -> torch.Tensor:
    """n samples of G in eval mode as uint8 (n, C, S, S) on the CPU; noise from a seeded generator."""
    g = g.to(device).eval()
    noise = torch.Generator(device=device).manual_seed(seed)
    chunks = []
    for start in range(0, n, batch_size):
        z = torch.randn(min(batch_size, n - start), g.spec.latent_dim, device=device, generator=noise)
        chunks.append(to_uint8(g(z), g.spec.pixel_range).cpu())
    return torch.cat(chunks).contiguous()


@torch.inference_mode()
def sample_grid(g: Generator, z: torch.Tensor) -> torch.Tensor:
    """(3, H, W) uint8 grid of G(z), generated in eval mode (G's mode is restored afterwards)."""
    was_training = g.training
    g.eval()
    images = to_uint8(g(z), g.spec.pixel_range).cpu()
    g.train(was_training)
    return make_grid(images, nrow=int(len(z) ** 0.5), padding=2, pad_value=255)
