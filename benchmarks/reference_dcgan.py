"""The classic PyTorch DCGAN example (pytorch/examples, dcgan/main.py), restated as the benchmark's reference.

What is kept from the example, on purpose, because it is what the benchmark compares against:

- data: a torchvision `MNIST` Dataset that hands out PIL images, per-image transforms
  (`ToTensor`, `Normalize((0.5,), (0.5,))`, and `Resize` when the images are not already the training
  size), batched by a `DataLoader` with `shuffle=True` and the example's `--workers` (default 2);
- models: `nn.Sequential` of ConvTranspose2d / BatchNorm / activation / Tanh for G and Conv2d / BatchNorm /
  LeakyReLU / **Sigmoid** for D, initialised by a `weights_init` applied to every module;
- loss: **`nn.BCELoss`** on D's probabilities, with label tensors filled with 1 or 0 each step;
- loop: D on real, backward, D on fake.detach(), backward, step; G through D, backward, step;
  `.item()` on D(x), D(G(z)) and both losses **every step** to print the progress line.

What is *not* the example's, so that only the loop differs from dcgan-lab's (see benchmarks/README.md):

- the layer stack follows dcgan-lab's spec for the variant (widths, 32x32 instead of 64x64, bias where
  there is no batch norm, spectral norm in D and G's activation when the variant asks for them), so the
  two sides do the same convolutions;
- for a variant with DiffAugment, D's input goes through the same augmentation function, as in the
  DiffAugment authors' DCGAN recipe (`D(DiffAugment(x))`);
- the progress line is formatted every step but handed to `log` (by default dropped), so the speed of a
  terminal does not count; the example's image dumps every 100 steps are left out.
"""

from __future__ import annotations

import struct
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

REAL_LABEL = 1.0
FAKE_LABEL = 0.0


# --------------------------------------------------------------------------- models, nn.Sequential as in the example


def weights_init(m: nn.Module) -> None:
    """The example's init: conv weights ~ N(0, 0.02), batch norm scale ~ N(1, 0.02) and shift 0."""
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        weight = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
        nn.init.normal_(weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif classname.find("BatchNorm") != -1:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def _act(name: str) -> nn.Module:
    return nn.ReLU(True) if name == "relu" else nn.LeakyReLU(0.2, inplace=True)


class Generator(nn.Module):
    def __init__(self, nz: int, ngf: int, nc: int, image_size: int, activation: str = "relu",
                 batch_norm: bool = True):
        super().__init__()
        n = int(np.log2(image_size)) - 2  # doublings after the 4x4 base: 32 px -> 3
        bias = not batch_norm
        mult = 2 ** (n - 1)
        layers: list[nn.Module] = [
            # input is Z, going into a convolution
            nn.ConvTranspose2d(nz, ngf * mult, 4, 1, 0, bias=bias),
            *([nn.BatchNorm2d(ngf * mult)] if batch_norm else []),
            _act(activation),
        ]
        # state size. (ngf*mult) x 4 x 4
        while mult > 1:
            layers += [
                nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 4, 2, 1, bias=bias),
                *([nn.BatchNorm2d(ngf * mult // 2)] if batch_norm else []),
                _act(activation),
            ]
            mult //= 2
            # state size. (ngf*mult) x 2s x 2s
        layers += [nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=True), nn.Tanh()]
        # state size. (nc) x image_size x image_size
        self.main = nn.Sequential(*layers)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self.main(input)


class Discriminator(nn.Module):
    def __init__(self, ndf: int, nc: int, image_size: int, batch_norm: bool = True, sn: bool = False,
                 head: str = "conv"):
        super().__init__()
        n = int(np.log2(image_size)) - 2
        wrap = spectral_norm if sn else (lambda m: m)
        # input is (nc) x image_size x image_size; no batch norm on the input layer
        layers: list[nn.Module] = [wrap(nn.Conv2d(nc, ndf, 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True)]
        mult = 1
        for _ in range(n - 1):
            # state size. (ndf*mult) x s x s -> (ndf*mult*2) x s/2 x s/2
            layers += [
                wrap(nn.Conv2d(ndf * mult, ndf * mult * 2, 4, 2, 1, bias=not batch_norm)),
                *([nn.BatchNorm2d(ndf * mult * 2)] if batch_norm else []),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            mult *= 2
        # state size. (ndf*mult) x 4 x 4
        if head == "conv":
            layers += [wrap(nn.Conv2d(ndf * mult, 1, 4, 1, 0))]
        else:
            layers += [nn.AdaptiveAvgPool2d(1), wrap(nn.Conv2d(ndf * mult, 1, 1))]
        layers += [nn.Sigmoid()]
        self.main = nn.Sequential(*layers)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self.main(input).view(-1, 1).squeeze(1)


def build_models(g_spec, d_spec, device: torch.device) -> tuple[Generator, Discriminator]:
    """The example's nets with the layer stack of dcgan-lab's specs (GeneratorSpec, DiscriminatorSpec)."""
    if g_spec.output != "tanh":
        raise ValueError("the reference follows the example: Tanh output, pixels in [-1, 1]")
    netG = Generator(g_spec.latent_dim, g_spec.width, g_spec.channels, g_spec.image_size, g_spec.activation,
                     g_spec.batch_norm).to(device)
    netG.apply(weights_init)
    netD = Discriminator(d_spec.width, d_spec.channels, d_spec.image_size, d_spec.batch_norm, d_spec.spectral_norm,
                         d_spec.head).to(device)
    netD.apply(weights_init)
    return netG, netD


# --------------------------------------------------------------------------- data: torchvision MNIST + DataLoader


def _write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file (LeCun's MNIST format): magic 0x0800 | ndim for unsigned bytes, then big-endian sizes."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def mnist_dataset(images: torch.Tensor, labels: torch.Tensor, root: Path, image_size: int):
    """torchvision's own `MNIST` class over these uint8 (N, 1, H, W) images, written out as its raw IDX files,
    with the example's transforms. Items are PIL images until the transforms run, as in the example."""
    import torchvision.datasets as dset
    import torchvision.transforms as transforms

    raw = Path(root) / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    x = images[:, 0].numpy()
    y = labels.numpy().astype(np.uint8)
    _write_idx(raw / "train-images-idx3-ubyte", x)
    _write_idx(raw / "train-labels-idx1-ubyte", y)
    _write_idx(raw / "t10k-images-idx3-ubyte", x[:1])  # torchvision checks that the test files exist too
    _write_idx(raw / "t10k-labels-idx1-ubyte", y[:1])
    steps = [transforms.Resize(image_size)] if x.shape[-1] != image_size else []
    return dset.MNIST(
        root=str(root), train=True, download=False,
        transform=transforms.Compose([*steps, transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))]),
    )


def make_dataloader(dataset, batch_size: int, workers: int) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=int(workers))


# --------------------------------------------------------------------------- the loop


def train(
    netG: Generator,
    netD: Discriminator,
    dataloader,
    nz: int,
    device: torch.device,
    steps: int,
    lr: tuple[float, float] = (2.0e-4, 2.0e-4),
    betas: tuple[float, float] = (0.5, 0.999),
    augment: Callable[[torch.Tensor], torch.Tensor] = lambda x: x,
    log: Callable[[str], None] = lambda line: None,
) -> dict:
    """`steps` iterations of the example's loop (epochs restart the DataLoader, as `for epoch ...` does).

    Returns the per-step losses and D outputs (floats, read with `.item()` as the example does) and
    `times`: time.perf_counter() after each step (every step ends with a host sync, so they are exact)."""
    criterion = nn.BCELoss()
    optimizerD = torch.optim.Adam(netD.parameters(), lr=lr[1], betas=betas)
    optimizerG = torch.optim.Adam(netG.parameters(), lr=lr[0], betas=betas)
    netG.train(), netD.train()
    history, times = [], []
    epoch = 0
    while len(times) < steps:
        for i, data in enumerate(dataloader, 0):
            ############################
            # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
            ###########################
            # train with real
            netD.zero_grad()
            real_cpu = data[0].to(device)
            batch_size = real_cpu.size(0)
            label = torch.full((batch_size,), REAL_LABEL, dtype=real_cpu.dtype, device=device)

            output = netD(augment(real_cpu))
            errD_real = criterion(output, label)
            errD_real.backward()
            D_x = output.mean().item()

            # train with fake
            noise = torch.randn(batch_size, nz, 1, 1, device=device)
            fake = netG(noise)
            label.fill_(FAKE_LABEL)
            output = netD(augment(fake.detach()))
            errD_fake = criterion(output, label)
            errD_fake.backward()
            D_G_z1 = output.mean().item()
            errD = errD_real + errD_fake
            optimizerD.step()

            ############################
            # (2) Update G network: maximize log(D(G(z)))
            ###########################
            netG.zero_grad()
            label.fill_(REAL_LABEL)  # fake labels are real for generator cost
            output = netD(augment(fake))
            errG = criterion(output, label)
            errG.backward()
            D_G_z2 = output.mean().item()
            optimizerG.step()

            loss_d, loss_g = errD.item(), errG.item()
            log("[%d][%d/%d] Loss_D: %.4f Loss_G: %.4f D(x): %.4f D(G(z)): %.4f / %.4f"
                % (epoch, i, len(dataloader), loss_d, loss_g, D_x, D_G_z1, D_G_z2))
            history.append((loss_d, loss_g, D_x, D_G_z1, D_G_z2))
            times.append(time.perf_counter())
            if len(times) == steps:
                break
        epoch += 1
    return {"history": history, "times": times}
