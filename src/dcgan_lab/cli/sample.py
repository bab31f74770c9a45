"""`dcgan-lab sample SRC --n 64 --out grid.png|dir/|file.npz`: seeded samples of a trained generator.

Noise comes from gan.sampling.latent_noise (one seeded draw per sample, so sample i is the same for any
--n; --truncation T redraws every |z| > T), images from G in eval mode under inference mode, converted to
uint8 by the generator's own pixel range. The same SRC and --seed give byte-identical files.

A conditional generator (trained with classes) makes class K with --class K; without it, sample i is of class
i mod (its number of classes), and the grid has one row per class (sample i in row i mod classes, column
i // classes; a shorter row ends in white cells, as a square grid's last row does).
"""

from __future__ import annotations

import argparse
import math

from . import options, outputs

DESCRIPTION = """Generate samples from a trained generator: a grid PNG (--out grid.png), a folder with one PNG per
sample (--out samples/), or an .npz with `images` (N, C, H, W) uint8, their noise `z` (N, latent) float32 and,
from a conditional generator, their `labels` (N,) int64 (--out samples.npz). The same --seed gives the same
bytes. A conditional generator makes class K with --class K, else every class in turn (a grid: one row per
class)."""
EXAMPLES = """examples:
  dcgan-lab sample models/final/seed0 --best --n 64 --out grid.png
  dcgan-lab sample models/final/seed0 --ema --n 1000 --seed 1 --out samples.npz
  dcgan-lab sample models/cgan/seed0 --class 3 --n 16 --out threes.png
  dcgan-lab sample runs:/<run_id>/generator --n 16 --truncation 0.7 --out truncated/"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("sample", help="samples of a generator as a grid, a folder of PNGs or an .npz",
                              description=DESCRIPTION, epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_source(p)
    p.add_argument("--n", type=options.positive_int, default=64, help="number of samples (default: 64)")
    p.add_argument("--seed", type=options.non_negative_int, default=0, help="noise seed (default: 0)")
    p.add_argument("--truncation", type=options.positive_float, metavar="T",
                   help="truncation trick: redraw every noise entry with |z| > T (T > 0; e.g. 0.7)")
    options.add_class(p)
    p.add_argument("--out", required=True, help="grid.png, a folder (dir/) or samples.npz")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from .source import class_labels, load_generator, resolve

    kind = outputs.sample_kind(args.out)  # before loading anything
    source = resolve(args.src, args.ema, args.best)
    from ..gan.sampling import generate_from, latent_noise  # torch: after what can fail without it
    g = load_generator(source)
    labels = class_labels(g, args.klass, args.n, args.src, cycle=True)
    z = latent_noise(args.n, g.spec.latent_dim, args.seed, args.truncation)
    images = generate_from(g, z, labels)  # (n, C, S, S) uint8
    what = f"{args.n} samples of {source.generator_name}, seed {args.seed}"
    if labels is not None:
        what += f", class {args.klass}" if args.klass is not None else f", classes 0-{g.spec.n_classes - 1} in turn"
    if args.truncation:
        what += f", truncation {args.truncation:g}"
    if kind == "grid" and labels is not None and args.klass is None:
        tiles, nrow = rows_per_class(images, g.spec.n_classes)
        columns, rows = outputs.save_grid(tiles, args.out, nrow=nrow)
        print(f"wrote {args.out}: {what}, a {columns}x{rows} grid, one row per class")
    elif kind == "grid":
        columns, rows = outputs.save_grid(images, args.out)
        print(f"wrote {args.out}: {what}, a {columns}x{rows} grid")
    elif kind == "folder":
        files = outputs.save_folder(images, args.out)
        print(f"wrote {len(files)} PNGs to {args.out} ({files[0].name} ...): {what}")
    else:
        arrays = {"images": images.numpy(), "z": z.numpy().astype("float32")}
        if labels is not None:  # a conditional generator's classes, one per sample
            arrays["labels"] = labels.numpy()
        outputs.save_npz(args.out, **arrays)
        print(f"wrote {args.out}: {what}; " + ", ".join(f"{k} {tuple(v.shape)} {v.dtype}" for k, v in arrays.items()))


def rows_per_class(images, n_classes: int):
    """The samples of every class in turn (sample i of class i mod n_classes) as grid tiles with one row per
    class: sample i at row i mod n_classes, column i // n_classes, empty cells white. Returns (tiles, columns)."""
    import torch

    columns = math.ceil(len(images) / n_classes)
    tiles = torch.full((n_classes * columns, *images.shape[1:]), 255, dtype=torch.uint8)
    i = torch.arange(len(images))
    tiles[(i % n_classes) * columns + i // n_classes] = images
    return tiles, columns
