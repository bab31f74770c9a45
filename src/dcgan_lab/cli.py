"""What every stage script shares: read params once, turn user errors into one clear line."""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from .config import Params, load_params
from .errors import UserError


def run_stage(main: Callable[[Params, argparse.Namespace], None], parser: argparse.ArgumentParser) -> None:
    """Parse arguments, load and validate params.yaml, call `main`; a UserError exits 2 with one line."""
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    args = parser.parse_args()
    try:
        main(load_params(args.params), args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
