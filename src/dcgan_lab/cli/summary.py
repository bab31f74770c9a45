"""`dcgan-lab summary SRC [--out DIR]`: what G and D are (gan.architecture): torchinfo tables printed, and
with --out the tables and a layered figure per network written to DIR."""

from __future__ import annotations

import argparse

from . import options

DESCRIPTION = """Print a torchinfo summary of the generator and the discriminator (layers, output shapes,
parameters, mult-adds); with --out DIR also write generator.txt, discriminator.txt and a layered figure of
each network (generator.png, discriminator.png). An MLflow model URI holds the generator only."""
EXAMPLES = """examples:
  dcgan-lab summary models/final/seed0
  dcgan-lab summary models/final/seed0 --out arch/
  dcgan-lab summary models:/dcgan-lab-generator/1"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("summary", help="torchinfo summaries and layered figures of G and D",
                              description=DESCRIPTION, epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_source(p)
    p.add_argument("--out", metavar="DIR", help="also write generator.txt/.png and discriminator.txt/.png here")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from ..core.errors import OutputError
    from ..gan.architecture import layer_tables, write_architecture
    from .source import load_discriminator, load_generator, resolve, why_no_discriminator

    source = resolve(args.src, args.ema, args.best)
    g, d = load_generator(source), load_discriminator(source)
    names = {"generator": source.generator_name, "discriminator": str(source.discriminator_file)}
    for name, text in layer_tables(g, d).items():
        print(f"{names[name]}: {name}\n{text}")
    if d is None:
        print(f"{args.src}: {why_no_discriminator(source)}")
    if args.out:
        try:
            written = write_architecture(g, d, args.out)
        except OSError as exc:
            raise OutputError(f"--out: {args.out}: cannot write here ({exc.strerror or type(exc).__name__}); "
                              f"allowed: a directory that can be created and written") from exc
        print("wrote " + ", ".join(str(p) for p in written))
