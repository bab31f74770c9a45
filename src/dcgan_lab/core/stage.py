"""What every stage script shares: read params once, turn user errors into one clear line."""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from .config import Params
from .errors import Stopped, UserError
from .params import load_params
from .paths import PARAMS_FILE


def run_stage(main: Callable[[Params, argparse.Namespace], None], parser: argparse.ArgumentParser) -> None:
    """Parse arguments, load and validate the params file, call `main`; a UserError exits 2 with one line."""
    parser.add_argument("--params", default=PARAMS_FILE, help=f"params file (default: {PARAMS_FILE}, as DVC reads)")
    args = parser.parse_args()
    try:
        main(load_params(args.params), args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except Stopped as exc:  # SIGTERM / Ctrl-C during training: saved, and says how to go on
        print(f"stopped: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:  # a second Ctrl-C, or one outside the training loop: nothing to save
        print("stopped: interrupted; outputs are written whole or not at all, and a rerun resumes from the last "
              "checkpoint written", file=sys.stderr)
        sys.exit(130)
