"""Images from a generator: seeded batches of uint8 samples, and the fixed-noise sample grid."""

from __future__ import annotations

import torch

from .models import Generator
from .pixels import to_uint8


@torch.inference_mode()
def generate(g: Generator, n: int, seed: int, batch_size: int, device: torch.device,
             labels: torch.Tensor | None = None) -> torch.Tensor:
    """n samples of G in eval mode as uint8 (n, C, S, S) on the CPU; noise from a seeded generator.
    A conditional G needs `labels`, (n,) int64: sample i is of class labels[i]."""
    g = g.to(device).eval()
    noise = torch.Generator(device=device).manual_seed(seed)
    chunks = []
    for start in range(0, n, batch_size):
        z = torch.randn(min(batch_size, n - start), g.spec.latent_dim, device=device, generator=noise)
        y = None if labels is None else labels[start : start + len(z)].to(device)
        chunks.append(to_uint8(g(z) if y is None else g(z, y), g.spec.pixel_range).cpu())
    return torch.cat(chunks).contiguous()


def labels_in_proportion(n: int, frequencies: torch.Tensor) -> torch.Tensor:
    """(n,) int64 labels, class by class, with counts proportional to `frequencies` (largest remainders):
    what a conditional G is asked for when it is scored against a real split with those class shares."""
    share = frequencies.double() / frequencies.sum() * n
    counts = share.floor().long()
    counts[torch.argsort(share - counts, descending=True, stable=True)[: n - int(counts.sum())]] += 1
    return torch.repeat_interleave(torch.arange(len(counts)), counts)


@torch.inference_mode()
def sample_grid(g: Generator, z: torch.Tensor) -> torch.Tensor:
    """(3, H, W) uint8 grid of G(z), generated in eval mode (G's mode is restored afterwards). A conditional
    G draws one row per class, with the same noise (the first sqrt(len(z)) vectors of z) in each column."""
    from torchvision.utils import make_grid  # here: importing torchvision adds to every start-up, and only grids need it

    was_training = g.training
    g.eval()
    cols = int(len(z) ** 0.5)
    if g.spec.n_classes:
        labels = torch.arange(g.spec.n_classes, device=z.device).repeat_interleave(cols)
        out = g(z[:cols].repeat(g.spec.n_classes, 1), labels)
    else:
        out = g(z)
    images = to_uint8(out, g.spec.pixel_range).cpu()
    g.train(was_training)
    return make_grid(images, nrow=cols, padding=2, pad_value=255)


def latent_noise(n: int, latent_dim: int, seed: int, truncation: float | None = None) -> torch.Tensor:
    """(n, latent_dim) float32 N(0, 1) noise from a generator seeded with `seed`, drawn one sample at a time,
    so sample i is the same whatever n is (the first of 64 samples is the one sample of n = 1).
    With `truncation` T > 0, every entry with |z| > T is drawn again until none is (the truncation trick,
    as BigGAN and StudioGAN do it): fidelity for variety."""
    noise = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        z = torch.randn(latent_dim, generator=noise)
        while truncation is not None and (outside := z.abs() > truncation).any():
            z[outside] = torch.randn(int(outside.sum()), generator=noise)
        rows.append(z)
    return torch.stack(rows) if rows else torch.empty(0, latent_dim)


def latent_walk(z0: torch.Tensor, z1: torch.Tensor, steps: int, spherical: bool = False) -> torch.Tensor:
    """(steps, latent_dim) points from z0 to z1, both ends included: on the line, or with `spherical` on the
    great circle (slerp; White 2016), which keeps the norm a Gaussian latent usually has."""
    t = torch.linspace(0, 1, steps).unsqueeze(1)  # (steps, 1)
    omega = torch.arccos(torch.clamp(torch.dot(z0 / z0.norm(), z1 / z1.norm()), -1.0, 1.0))
    if not spherical or omega.abs() < 1e-6:  # (anti)parallel ends: the line is the only well-defined walk
        return (1 - t) * z0 + t * z1
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


@torch.inference_mode()
def generate_from(g: torch.nn.Module, z: torch.Tensor, labels: torch.Tensor | None = None,
                  batch_size: int = 256) -> torch.Tensor:
    """uint8 (n, C, S, S) images of G(z) (or G(z, labels) for a conditional G) in eval mode, on the CPU."""
    g = g.cpu().eval()
    chunks = []
    for start in range(0, len(z), batch_size):
        batch = z[start : start + batch_size]
        out = g(batch) if labels is None else g(batch, labels[start : start + batch_size])
        chunks.append(to_uint8(out, g.spec.pixel_range))
    return torch.cat(chunks) if chunks else torch.empty(0, dtype=torch.uint8)
