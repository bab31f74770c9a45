"""The flags the subcommands share (SRC, --ema/--best, --class) and argument types that say what is allowed.

Nothing here imports torch: `--help` and a bad flag answer at once.
"""

from __future__ import annotations

import argparse
import math

SRC_HELP = ("a checkpoint (models/<variant>/seed<k>/checkpoint.pt or best.pt), a model directory "
            "(models/<variant>/seed<k>: its checkpoint.pt) or an MLflow model URI (runs:/<run_id>/generator, "
            "models:/<name>/<version>; the store is MLFLOW_TRACKING_URI, else ./mlflow.db)")


def positive_int(text: str) -> int:
    return _int_at_least(text, 1)


def walk_steps(text: str) -> int:
    return _int_at_least(text, 2)


def non_negative_int(text: str) -> int:
    return _int_at_least(text, 0)


def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer; allowed: an integer >= {low}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"{value} is out of range; allowed: an integer >= {low}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; allowed: a number > 0, e.g. 0.7") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} is out of range; allowed: a number > 0, e.g. 0.7")
    return value


def add_source(parser: argparse.ArgumentParser) -> None:
    """SRC and the flags that pick a generator inside a model directory or checkpoint."""
    parser.add_argument("src", metavar="SRC", help=SRC_HELP)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--ema", action="store_true",
                       help="the EMA generator inside checkpoint.pt (train.ema_decay > 0) instead of the raw one")
    which.add_argument("--best", action="store_true",
                       help="best.pt of a model directory: the generator with the lowest quick FID in training")


def add_class(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--class", dest="klass", type=non_negative_int, metavar="K",
                        help="conditional generators only: every sample of class K (0 <= K < its number of classes)")
