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
ratio and the largest difference of outputs and gradients relative to their scale. It measures what rewriting the
edge layers would buy; the package does not use these forms (they are not bitwise the convolutions, so adopting them
reruns the study).

    python benchmarks/edge_layers.py [--batch 64] [--repeats 7] [--iters 20]
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

CL = torch.channels_last


def g_input(z, w, as_matmul):  # z (B, 100, 1, 1), w (100, 128, 4, 4)
    if not as_matmul:
        return F.conv_transpose2d(z, w)
    b, (c_in, c_out, k, _) = z.shape[0], w.shape
    return (z.flatten(1) @ w.reshape(c_in, -1)).view(b, c_out, k, k).contiguous(memory_format=CL)


def g_output(x, w, as_matmul):  # x (B, 32, 16, 16), w (32, 1, 4, 4)
    if not as_matmul:
        return F.conv_transpose2d(x, w, stride=2, padding=1)
    b, c_in, h, _ = x.shape
    cols = w.reshape(c_in, -1).t() @ x.reshape(b, c_in, h * h)  # (B, 16, 256): x is 1-channel-out, so NCHW = NHWC
    return F.fold(cols, (2 * h, 2 * h), 4, padding=1, stride=2).contiguous(memory_format=CL)


def d_input(x, w, as_matmul):  # x (B, 1, 32, 32), w (32, 1, 4, 4)
    if not as_matmul:
        return F.conv2d(x, w, stride=2, padding=1)
    b, h = x.shape[0], x.shape[2] // 2
    cols = F.unfold(x, 4, padding=1, stride=2)  # (B, 16, 256)
    return (w.reshape(w.shape[0], -1) @ cols).view(b, -1, h, h).contiguous(memory_format=CL)


def d_head(x, w, as_matmul):  # x (B, 128, 4, 4) channels_last, w (1, 128, 4, 4)
    if not as_matmul:
        return F.conv2d(x, w)
    b = x.shape[0]
    nhwc = x.permute(0, 2, 3, 1).reshape(b, -1)  # free for channels_last
    return (nhwc @ w.permute(0, 2, 3, 1).reshape(1, -1).t()).view(b, 1, 1, 1)


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7, help="ABBA rounds; each time is a median over them")
    parser.add_argument("--iters", type=int, default=20, help="forward + backward passes per timing")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    print(render(measure(args.batch, args.repeats, args.iters), args.batch))


if __name__ == "__main__":
    main()
