"""One DCGAN (Radford et al. 2015) whose variants come from flags.

Strided (transposed) convolutions, no pooling, no hidden fully connected layers,
N(0, 0.02) init. Which layers get batch norm or spectral norm, the generator's
hidden activation and its output squashing are constructor arguments, turned
into layer constructors once, so baseline / improved / final are the same code.

Conditional variants (`n_classes` > 0) take a class label beside their input: G joins a learned label
embedding to z, D adds the projection term of Miyato & Koyama (2018) to its logit.

The specs are plain dataclasses saved inside checkpoints, so a checkpoint
rebuilds its model with nothing else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from ..core.config import Params, VariantConfig
from .pixels import output_for, pixel_range_for


@dataclass(frozen=True)
class GeneratorSpec:
    latent_dim: int
    width: int
    image_size: int
    channels: int
    activation: str  # "relu" | "leaky_relu"
    batch_norm: bool
    output: str  # "tanh" for pixels in [-1, 1], "sigmoid" for [0, 1]
    n_classes: int = 0  # > 0: conditional, G(z, y) with labels y in [0, n_classes)
    # How a conditional G takes its label: "concat", a label embedding joined to z; "cbn", conditional batch
    # norm, a per-class gain and shift in every batch-norm layer (needs batch_norm).
    conditioning: str = "concat"
    embed_dim: int = 0  # concat: the label embedding's width; 0: latent_dim
    embed_std: float = 1.0  # concat: its init, N(0, embed_std)

    @property
    def pixel_range(self) -> tuple[float, float]:
        return pixel_range_for(self.output)


@dataclass(frozen=True)
class DiscriminatorSpec:
    width: int
    image_size: int
    channels: int
    batch_norm: bool
    spectral_norm: bool
    head: str  # "conv": 4x4 conv to one logit; "gap": global average pool + 1x1 conv
    n_classes: int = 0  # > 0: conditional, D(x, y) with the projection term


def specs_from_params(params: Params, variant: VariantConfig, channels: int,
                      n_classes: int = 0) -> tuple[GeneratorSpec, DiscriminatorSpec]:
    """The specs of one variant: shared widths and image size from `model`/`data`, flags from the variant.
    `n_classes` is the prepared data set's (its manifest); only a conditional variant uses it."""
    data, model = params.data, params.model
    n_classes = n_classes if variant.conditional else 0

    g = GeneratorSpec(
        latent_dim=model.latent_dim,
        width=model.g_width,
        image_size=data.image_size,
        channels=channels,
        activation=variant.g_activation,
        batch_norm=variant.g_batch_norm,
        output=output_for(data.pixel_range),
        n_classes=n_classes,
        conditioning=variant.g_conditioning,
        embed_dim=variant.g_embedding_dim or 0,
        embed_std=variant.g_embedding_std,
    )
    d = DiscriminatorSpec(
        width=model.d_width,
        image_size=data.image_size,
        channels=channels,
        batch_norm=variant.d_batch_norm,
        spectral_norm=variant.d_spectral_norm,
        head=model.d_head,
        n_classes=n_classes,
    )
    return g, d


def _n_stages(image_size: int) -> int:
    """Resolution doublings between the 4x4 base and the image, e.g. 32 -> 3 (4, 8, 16, 32)."""
    n = int(math.log2(image_size)) - 2
    if 2 ** (n + 2) != image_size or n < 2:
        raise ValueError(f"image_size must be a power of two >= 16, got {image_size}")
    return n


def _activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "leaky_relu":
        return nn.LeakyReLU(0.2, inplace=True)
    raise ValueError(f"activation must be relu or leaky_relu, got {name!r}")


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose gain and shift are the label's (de Vries et al. 2017; the generator of Miyato & Koyama's
    projection-discriminator paper and BigGAN's): normalise without affine, then x * gain[y] + shift[y]."""

    def __init__(self, channels: int, n_classes: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Parameter(torch.ones(n_classes, channels))  # (K, C); init_weights: N(1, 0.02)
        self.shift = nn.Parameter(torch.zeros(n_classes, channels))  # (K, C); init_weights: 0

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # x: (B, C, H, W), labels: (B,) -> (B, C, H, W)
        return self.norm(x) * self.gain[labels][:, :, None, None] + self.shift[labels][:, :, None, None]


class Generator(nn.Module):
    def __init__(self, spec: GeneratorSpec, init_seed: int | None = None):
        super().__init__()
        self.spec = spec
        n = _n_stages(spec.image_size)
        widths = [spec.width * 2 ** (n - 1 - i) for i in range(n)]  # e.g. 32 px: [4w, 2w, w]
        cbn = spec.n_classes > 0 and spec.conditioning == "cbn"
        if cbn and not spec.batch_norm:
            raise ValueError("conditioning cbn needs batch norm in G")
        norm = (lambda c: ConditionalBatchNorm2d(c, spec.n_classes)) if cbn else (
            nn.BatchNorm2d if spec.batch_norm else (lambda c: nn.Identity()))
        # Without batch norm the convs need their bias; with it the bias is redundant.
        bias = not spec.batch_norm

        # Conditioning "concat": a learned embedding of the label, joined to z (the conditional GAN of Mirza &
        # Osindero 2014, with an embedding in place of their one-hot code); it works with and without batch norm
        # in G, and the first layer sees latent_dim + embed_dim channels. "cbn": the labels go to every
        # batch-norm layer instead (ConditionalBatchNorm2d), and the first layer sees z alone.
        embed_dim = spec.embed_dim or spec.latent_dim
        self.embed = nn.Embedding(spec.n_classes, embed_dim) if spec.n_classes and not cbn else None
        z_channels = spec.latent_dim + (embed_dim if self.embed is not None else 0)
        layers: list[nn.Module] = [
            # (B, z_channels, 1, 1) -> (B, widths[0], 4, 4)
            nn.ConvTranspose2d(z_channels, widths[0], 4, 1, 0, bias=bias),
            norm(widths[0]),
            _activation(spec.activation),
        ]
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            # (B, c_in, s, s) -> (B, c_out, 2s, 2s)
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=bias), norm(c_out), _activation(spec.activation)]
        # (B, w, S/2, S/2) -> (B, channels, S, S); no batch norm at the output (Radford et al.)
        layers.append(nn.ConvTranspose2d(widths[-1], spec.channels, 4, 2, 1, bias=True))
        layers.append(nn.Tanh() if spec.output == "tanh" else nn.Sigmoid())
        self.net = nn.Sequential(*layers)
        init_weights(self, init_seed)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        # z: (B, latent_dim) or (B, latent_dim, 1, 1), labels: (B,) int64 if conditional -> images (B, C, S, S)
        z = z.view(z.shape[0], -1)
        if self.spec.n_classes:
            labels = _labels(labels, z.shape[0], self.spec.n_classes)
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], 1)
        x = z.view(z.shape[0], -1, 1, 1)
        if self.embed is not None or not self.spec.n_classes:
            return self.net(x)
        for layer in self.net:  # conditional batch norm: the labels go to its layers
            x = layer(x, labels) if isinstance(layer, ConditionalBatchNorm2d) else layer(x)
        return x


class Discriminator(nn.Module):
    """Returns one logit per image, shape (B,)."""

    def __init__(self, spec: DiscriminatorSpec, init_seed: int | None = None):
        super().__init__()
        self.spec = spec
        n = _n_stages(spec.image_size)
        widths = [spec.width * 2**i for i in range(n)]  # e.g. 32 px: [w, 2w, 4w]
        sn = _spectral_norm if spec.spectral_norm else (lambda m: m)
        norm = nn.BatchNorm2d if spec.batch_norm else (lambda c: nn.Identity())

        # (B, C, S, S) -> (B, w, S/2, S/2); no batch norm on the input layer (Radford et al.)
        layers: list[nn.Module] = [sn(nn.Conv2d(spec.channels, widths[0], 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True)]
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            # (B, c_in, s, s) -> (B, c_out, s/2, s/2)
            layers += [
                sn(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not spec.batch_norm)),
                norm(c_out),
                nn.LeakyReLU(0.2, inplace=True),
            ]
        # features: (B, widths[-1], 4, 4)
        if spec.head == "conv":
            head = [sn(nn.Conv2d(widths[-1], 1, 4, 1, 0))]  # -> (B, 1, 1, 1)
        elif spec.head == "gap":
            head = [nn.AdaptiveAvgPool2d(1), sn(nn.Conv2d(widths[-1], 1, 1))]  # -> (B, 1, 1, 1)
        else:
            raise ValueError(f"head must be conv or gap, got {spec.head!r}")
        self.n_head = len(head)
        self.net = nn.Sequential(*layers, *head)
        # Projection discriminator (Miyato & Koyama 2018): logit = psi(phi(x)) + <embed(y), phi(x)>, phi(x) the
        # last features summed over space (their global sum pooling), psi the head above. Spectral norm on the
        # embedding too when D has it, as in their code.
        self.embed = sn(nn.Embedding(spec.n_classes, widths[-1])) if spec.n_classes else None
        init_weights(self, init_seed)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        # x: (B, C, S, S), labels: (B,) int64 if conditional -> logits (B,)
        if self.embed is None:
            return self.net(x).view(-1)
        features = self.net[: -self.n_head](x)  # (B, widths[-1], 4, 4)
        logit = self.net[-self.n_head :](features).view(-1)
        phi = features.sum((2, 3))  # (B, widths[-1])
        return logit + (self.embed(_labels(labels, x.shape[0], self.spec.n_classes)) * phi).sum(1)


def _labels(labels: torch.Tensor | None, batch: int, n_classes: int) -> torch.Tensor:
    """A conditional model's labels, checked: one per sample."""
    if labels is None or labels.shape != (batch,):
        got = "none" if labels is None else f"shape {tuple(labels.shape)}"
        raise ValueError(f"a conditional model ({n_classes} classes) needs one label per sample, (B,) = ({batch},); "
                         f"got {got}")
    return labels


@torch.no_grad()
def init_weights(model: nn.Module, seed: int | None = None) -> None:
    """Radford et al.: conv weights ~ N(0, 0.02); batch norm scale ~ N(1, 0.02); biases and shifts 0.

    Drawn in layer order from two streams seeded by `seed`, one for convolutions and one for batch norm,
    so two variants built with the same seed start from the same conv weights wherever their shapes match,
    whatever batch norm, spectral norm or biases one of them adds (the report pairs runs by seed).
    Label embeddings (conditional variants) come from a third stream: N(0, spec.embed_std) in G (1 by default,
    as z ~ N(0, 1) beside them); N(0, 0.02) in D, a weight like the convs'.
    Without a seed, the streams are seeded from torch's global generator."""
    if seed is None:
        seed = int(torch.randint(0, 2**62, ()))
    convs, norms = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1)
    embeds = torch.Generator().manual_seed(seed + (1 << 40))  # apart from the seeds nearby networks use
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            # With spectral norm the trainable tensor is parametrizations.weight.original.
            weight = module.parametrizations.weight.original if hasattr(module, "parametrizations") else module.weight
            weight.normal_(0.0, 0.02, generator=convs)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, nn.BatchNorm2d) and module.affine:
            module.weight.normal_(1.0, 0.02, generator=norms)
            module.bias.zero_()
        elif isinstance(module, ConditionalBatchNorm2d):  # each class's gain and shift as batch norm's own
            module.gain.normal_(1.0, 0.02, generator=norms)
            module.shift.zero_()
        elif isinstance(module, nn.Embedding):
            weight = module.parametrizations.weight.original if hasattr(module, "parametrizations") else module.weight
            weight.normal_(0.0, model.spec.embed_std if isinstance(model, Generator) else 0.02, generator=embeds)
