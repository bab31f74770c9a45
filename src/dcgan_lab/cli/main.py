"""The `dcgan-lab` console command: one subcommand per module of this package.

Every failure is one line on stderr, `error: ...` naming the file or flag and what is allowed, and exit
code 2: argparse's own errors (usually usage plus a message) included, and anything unexpected too, so
a user never reads a traceback. Subcommands import torch, MLflow and the rest only when they run:
`--help` and a bad flag answer at once.
"""

from __future__ import annotations

import argparse
import sys

from ..core.errors import UserError
from . import compare, interpolate, sample, study, summary, ui

SUBCOMMANDS = (sample, interpolate, summary, compare, study, ui)


class Parser(argparse.ArgumentParser):
    """argparse, but a bad command line is a UserError (one line), not usage plus a message."""

    def error(self, message: str):
        raise UserError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser() -> Parser:
    parser = Parser(prog="dcgan-lab", description="Sample, interpolate and inspect the generators that the "
                    "dcgan-lab pipeline trained, read its ablation verdicts, run the declared study look by look, and open its MLflow UI. `dcgan-lab COMMAND --help` "
                    "says more.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in SUBCOMMANDS:
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        args.run(args)
    except UserError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return fail("interrupted; files are written whole or not at all")
    except Exception as exc:  # still one line: what failed and how, not a traceback
        return fail(f"{type(exc).__name__}: {exc}")
    return 0


def fail(message: str) -> int:
    print("error: " + " ".join(message.split()), file=sys.stderr)  # messages that quote others may hold newlines
    return 2


if __name__ == "__main__":
    sys.exit(main())
