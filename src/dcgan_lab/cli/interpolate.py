"""`dcgan-lab interpolate SRC --from S1 --to S2 --steps 10 --out walk.png|walk.gif`: a walk in latent space.

The ends are the noise of seeds S1 and S2, the same vectors `dcgan-lab sample --seed S` draws for its first
sample; the path between them is a line, or with --slerp the great circle (gan.sampling.latent_walk).
"""

from __future__ import annotations

import argparse

from . import options, outputs

DESCRIPTION = """Walk from the noise of one seed to the noise of another and show G along the way: one row of
frames (--out walk.png) or an animated GIF that loops (--out walk.gif). Each end is the first sample that
`dcgan-lab sample --seed S` makes."""
EXAMPLES = """examples:
  dcgan-lab interpolate models/final/seed0 --from 1 --to 2 --steps 10 --out walk.png
  dcgan-lab interpolate models/final/seed0 --ema --from 1 --to 2 --steps 24 --slerp --out walk.gif"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("interpolate", help="a latent walk between two seeds' noise, as a PNG row or a GIF",
                              description=DESCRIPTION, epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_source(p)
    p.add_argument("--from", dest="seed_from", type=options.non_negative_int, required=True, metavar="S1",
                   help="seed of the first end")
    p.add_argument("--to", dest="seed_to", type=options.non_negative_int, required=True, metavar="S2",
                   help="seed of the last end")
    p.add_argument("--steps", type=options.walk_steps, default=10,
                   help="frames, both ends included (>= 2; default: 10)")
    p.add_argument("--slerp", action="store_true", help="spherical interpolation instead of a straight line")
    options.add_class(p)
    p.add_argument("--out", required=True, help="walk.png (one row of frames) or walk.gif (animation)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from .source import class_labels, load_generator, resolve

    kind = outputs.walk_kind(args.out)  # before loading anything
    source = resolve(args.src, args.ema, args.best)
    from ..gan.sampling import generate_from, latent_noise, latent_walk  # torch: after what can fail without it
    g = load_generator(source)
    labels = class_labels(g, args.klass, args.steps, args.src, cycle=False)
    ends = [latent_noise(1, g.spec.latent_dim, seed)[0] for seed in (args.seed_from, args.seed_to)]
    images = generate_from(g, latent_walk(*ends, args.steps, spherical=args.slerp), labels)
    how = "slerp" if args.slerp else "linear"
    if kind == "row":
        outputs.save_grid(images, args.out, nrow=args.steps)
    else:
        outputs.save_gif(images, args.out)
    print(f"wrote {args.out}: {args.steps} frames of {source.generator_name}, "
          f"seed {args.seed_from} -> {args.seed_to} ({how})")
