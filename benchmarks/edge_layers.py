"""edge_layers: the four edge convolutions of G and D, as oneDNN runs them and written as matrix products.

profile_step.py shows the study's four middle convolutions at 70-86% of the CPU's matmul peak and the four at the
edges (G's 1x1 -> 4x4 input layer and its layer to 1 channel, D's layer from 1 channel and its 4x4 -> 1x1 head) at
1-26 GFLOP/s: 3.4% of the FLOPs, a sixth of the step. Each of them is a matrix product in disguise:

| layer | as a matrix product |
| --- | --- |
| G input, ConvTranspose2d(100, 128, 4, 1, 0) on 1x1 | z (B, 100) @ W (100, 128*16) |
| G output, ConvTranspose2d(32, 1, 4, 2, 1) | W^T (16, 32) @ x (B, 32, 256), then col2im (`F.fold`) |
| D input, Conv2d(1, 32, 4, 2, 1) | W (32, 16) @ im2col(x) (`F.unfold`, B, 16, 256) |
| D head, Conv2d(128, 1, 4, 1, 0) on 4x4 | x (B, 2048) @ w (2048,) |

This times each layer's forward and backward (gradients for its input and weight) both ways, side by side and
interleaved, at the study's batch and widths in the train stage's memory format (channels_last), and prints the
ratio and the largest difference of outputs and gradients relative to their scale.

A layer alone is not the step, so `--in-step VARIANT` then times what the forms buy there: the variant's G and D
(channels_last, deterministic algorithms on, as fit runs them) through one training step's passes, G on fresh
noise, D on augmented real and detached fake images with its loss backward, D on the augmented fake with G's loss
backward (fit's optimizer steps, EMA and read-backs are left out: they are the same either way). Three arms,
interleaved forwards then backwards every repeat: torch's convolutions; G's input and D's head as products; those
and D's input as im2col and a product. Each arm swaps only the layers' forward, on the same modules and weights.
The package does not use these forms: they are not bitwise the convolutions (adopting them reruns the study), and
in the step they buy far less than alone (benchmarks/RESULTS.md).

    python benchmarks/edge_layers.py [--batch 64] [--repeats 7] [--iters 20] [--in-step final [--step-repeats 9]]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import torch.nn.functional as F
from torch import nn

CL = torch.channels_last


def _nhwc(t: torch.Tensor) -> bool:
    """Channels-last strides (by strides: a one-channel tensor is contiguous in both formats)."""
    return t.stride(1) == 1 and t.shape[2] * t.shape[3] > 1


# The product forms, each on its layer's input and weight, in the memory order of the one that is channels_last
# (so every reshape is a view) and without bias. They return views of the product.

def g_input_product(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:  # 1x1 -> k x k: x (B, C, 1, 1) @ W
    b, (c_in, c_out, kh, kw) = x.shape[0], w.shape
    if _nhwc(w):
        return (x.reshape(b, c_in) @ w.permute(0, 2, 3, 1).reshape(c_in, -1)).view(b, kh, kw, c_out).permute(0, 3, 1, 2)
    return (x.reshape(b, c_in) @ w.reshape(c_in, -1)).view(b, c_out, kh, kw)


def d_head_product(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:  # kernel = input size -> 1x1
    b, c_out = x.shape[0], w.shape[0]
    xs, ws = (x.permute(0, 2, 3, 1), w.permute(0, 2, 3, 1)) if _nhwc(x) else (x, w)
    return (xs.reshape(b, -1) @ ws.reshape(c_out, -1).t()).view(b, c_out, 1, 1)


def d_input_product(x: torch.Tensor, w: torch.Tensor, kernel=(4, 4), stride=(2, 2), padding=(1, 1)) -> torch.Tensor:
    """One input channel: im2col, then one product; NHWC if the input or the weight is, as oneDNN decides."""
    b, _, h, wd = x.shape
    h_out, w_out = ((n + 2 * p - k) // s + 1 for n, p, k, s in zip((h, wd), padding, kernel, stride))
    cols = F.unfold(x, kernel, padding=padding, stride=stride)  # (B, k*k, L)
    weight = w.reshape(w.shape[0], -1)
    if _nhwc(x) or _nhwc(w):
        return (cols.transpose(1, 2) @ weight.t()).view(b, h_out, w_out, -1).permute(0, 3, 1, 2)
    return (weight @ cols).view(b, -1, h_out, w_out)


def g_input(z, w, as_matmul):  # z (B, 100, 1, 1), w (100, 128, 4, 4)
    return g_input_product(z, w).contiguous(memory_format=CL) if as_matmul else F.conv_transpose2d(z, w)


def g_output(x, w, as_matmul):  # x (B, 32, 16, 16), w (32, 1, 4, 4)
    if not as_matmul:
        return F.conv_transpose2d(x, w, stride=2, padding=1)
    b, c_in, h, _ = x.shape
    cols = w.reshape(c_in, -1).t() @ x.reshape(b, c_in, h * h)  # (B, 16, 256): x is 1-channel-out, so NCHW = NHWC
    return F.fold(cols, (2 * h, 2 * h), 4, padding=1, stride=2).contiguous(memory_format=CL)


def d_input(x, w, as_matmul):  # x (B, 1, 32, 32), w (32, 1, 4, 4)
    return d_input_product(x, w).contiguous(memory_format=CL) if as_matmul else F.conv2d(x, w, stride=2, padding=1)


def d_head(x, w, as_matmul):  # x (B, 128, 4, 4) channels_last, w (1, 128, 4, 4)
    return d_head_product(x, w) if as_matmul else F.conv2d(x, w)


def layers(batch: int) -> list[tuple[str, Callable, tuple[int, ...], tuple[int, ...]]]:
    """(name, function, input shape, weight shape) of the default study's edge layers (32x32, widths 32-128)."""
    return [("G ConvTranspose2d 100->128 (1x1 -> 4x4)", g_input, (batch, 100, 1, 1), (100, 128, 4, 4)),
            ("G ConvTranspose2d 32->1 (16x16 -> 32x32)", g_output, (batch, 32, 16, 16), (32, 1, 4, 4)),
            ("D Conv2d 1->32 (32x32 -> 16x16)", d_input, (batch, 1, 32, 32), (32, 1, 4, 4)),
            ("D Conv2d 128->1 (4x4 -> 1x1)", d_head, (batch, 128, 4, 4), (1, 128, 4, 4))]


def tensors(x_shape, w_shape, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(x_shape, generator=g).contiguous(memory_format=CL).requires_grad_()
    w = (0.02 * torch.randn(w_shape, generator=g)).requires_grad_()
    return x, w


def forward_backward(fn, x, w, as_matmul):
    x.grad = w.grad = None
    out = fn(x, w, as_matmul)
    out.backward(torch.ones_like(out))
    return out.detach(), x.grad, w.grad


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def measure(batch: int, repeats: int, iters: int) -> list[dict]:
    rows = []
    for name, fn, x_shape, w_shape in layers(batch):
        x, w = tensors(x_shape, w_shape)
        conv = forward_backward(fn, x, w, False)
        mm = forward_backward(fn, x, w, True)
        diff = max(relative_difference(a, b) for a, b in zip(mm, conv))
        times = {False: [], True: []}
        for _ in range(repeats):
            for as_matmul in (False, True, True, False):  # ABBA
                for _ in range(2):
                    forward_backward(fn, x, w, as_matmul)  # warm
                start = time.perf_counter()
                for _ in range(iters):
                    forward_backward(fn, x, w, as_matmul)
                times[as_matmul].append((time.perf_counter() - start) / iters * 1e3)
        conv_ms, mm_ms = statistics.median(times[False]), statistics.median(times[True])
        rows.append({"layer": name, "conv_ms": conv_ms, "matmul_ms": mm_ms, "speedup": conv_ms / mm_ms,
                     "max_relative_difference": diff})
    return rows


def render(rows: list[dict], batch: int) -> str:
    lines = [f"edge layers, forward + backward, batch {batch}, channels_last, {torch.get_num_threads()} threads",
             f"  {'layer':<42} {'conv ms':>8} {'matmul ms':>10} {'speed-up':>9} {'max rel diff':>13}"]
    for r in rows:
        lines.append(f"  {r['layer']:<42} {r['conv_ms']:8.3f} {r['matmul_ms']:10.3f} {r['speedup']:8.2f}x "
                     f"{r['max_relative_difference']:13.1e}")
    conv, mm = sum(r["conv_ms"] for r in rows), sum(r["matmul_ms"] for r in rows)
    lines.append(f"  {'all four':<42} {conv:8.3f} {mm:10.3f} {conv / mm:8.2f}x")
    return "\n".join(lines)


# The forms as the layers' forward, for the in-step timing: on a module's own weight, with its bias.

def _own(out: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The product's (B, C, H, W) view as a tensor of its own, bias added. The next layer's in-place activation
    on a view makes autograd clone the view's whole base in every backward (CopySlices): a first version that
    returned the view was slower in the step than the convolutions it replaced."""
    return out.clone(memory_format=torch.preserve_format) if bias is None else out + bias.view(1, -1, 1, 1)


def g_input_forward(m: nn.ConvTranspose2d, x: torch.Tensor) -> torch.Tensor:
    return _own(g_input_product(x, m.weight), m.bias)


def d_head_forward(m: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    return _own(d_head_product(x, m.weight), m.bias)


def d_input_forward(m: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    return _own(d_input_product(x, m.weight, m.kernel_size, m.stride, m.padding), m.bias)


ARMS = {"convolutions": (), "G input + D head as products": ("g_input", "d_head"),
        "and D input as im2col + product": ("g_input", "d_head", "d_input")}


def edge_modules(g: nn.Module, d: nn.Module) -> dict[str, nn.Module]:
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    g_convs = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    return {"g_input": g_convs[0], "d_input": convs[0], "d_head": convs[-1]}


def use_forms(modules: dict[str, nn.Module], forms: tuple[str, ...]) -> None:
    """Set each named layer's forward to its product form, and the others' back to torch's."""
    forwards = {"g_input": g_input_forward, "d_head": d_head_forward, "d_input": d_input_forward}
    for name, m in modules.items():
        m.__dict__.pop("forward", None)
        if name in forms:
            m.forward = (lambda f, mod: lambda x, *a: f(mod, x))(forwards[name], m)


def step_models(variant_name: str, batch: int):
    from dcgan_lab.core.params import load_params
    from dcgan_lab.gan.augment import make_augment
    from dcgan_lab.gan.models import Discriminator, Generator, specs_from_params
    from benchmarks.common import ROOT

    params = load_params(ROOT / "params.yaml")
    variant = params.variant(variant_name)
    g_spec, d_spec = specs_from_params(params, variant, channels=1)
    g, d = Generator(g_spec, init_seed=0).to(memory_format=CL), Discriminator(d_spec, init_seed=0).to(memory_format=CL)
    augment = make_augment(variant.augment, params.data.pixel_range, torch.Generator().manual_seed(0))
    real = torch.rand(batch, 1, d_spec.image_size, d_spec.image_size, generator=torch.Generator().manual_seed(1))
    return g, d, augment, real.to(memory_format=CL), g_spec.latent_dim


def in_step(variant_name: str, batch: int, repeats: int, iters: int) -> list[dict]:
    """ms per step of each arm (median over `repeats` interleaved rounds), its speed-up over the convolutions,
    and its logits' largest difference from theirs relative to their scale."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)  # as fit's set_determinism on a CPU
    try:
        g, d, augment, real, latent = step_models(variant_name, batch)
        modules = edge_modules(g, d)
        z = torch.randn(batch, latent, generator=torch.Generator().manual_seed(2))

        def step() -> torch.Tensor:
            fake = g(z)
            d_real = d(augment(real))
            (d_real.mean() - d(augment(fake.detach())).mean()).backward()
            d(augment(fake)).mean().backward()
            return d_real.detach()

        logits, times = {}, {arm: [] for arm in ARMS}
        for arm, forms in ARMS.items():
            use_forms(modules, forms)
            with torch.no_grad():
                logits[arm] = d(real)
        for _ in range(repeats):
            for arm in [*ARMS, *reversed(ARMS)]:
                use_forms(modules, ARMS[arm])
                for _ in range(2):
                    step()
                start = time.perf_counter()
                for _ in range(iters):
                    step()
                times[arm].append((time.perf_counter() - start) / iters * 1e3)
        use_forms(modules, ())
    finally:
        torch.use_deterministic_algorithms(deterministic)
    base = statistics.median(times["convolutions"])
    return [{"arm": arm, "ms_per_step": statistics.median(t), "speedup": base / statistics.median(t),
             "max_relative_difference": relative_difference(logits[arm], logits["convolutions"])}
            for arm, t in times.items()]


def render_in_step(rows: list[dict], variant_name: str, batch: int, repeats: int) -> str:
    lines = [f"in the step: {variant_name}'s G and D, batch {batch}, channels_last, median of {repeats} "
             "interleaved rounds",
             f"  {'arm':<42} {'ms/step':>8} {'speed-up':>9} {'logits rel diff':>16}"]
    lines += [f"  {r['arm']:<42} {r['ms_per_step']:8.2f} {r['speedup']:8.3f}x {r['max_relative_difference']:16.1e}"
              for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7, help="ABBA rounds; each time is a median over them")
    parser.add_argument("--iters", type=int, default=20, help="forward + backward passes per timing")
    parser.add_argument("--in-step", metavar="VARIANT", help="then time the forms in this variant's step")
    parser.add_argument("--step-repeats", type=int, default=9, help="interleaved rounds of the in-step arms")
    parser.add_argument("--step-iters", type=int, default=15, help="steps per in-step timing")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    print(render(measure(args.batch, args.repeats, args.iters), args.batch))
    if args.in_step:
        rows = in_step(args.in_step, args.batch, args.step_repeats, args.step_iters)
        print(render_in_step(rows, args.in_step, args.batch, args.step_repeats))


if __name__ == "__main__":
    main()
