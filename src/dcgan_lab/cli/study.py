"""`dcgan-lab study [--params params.yaml]`: run the declared sequential study to its end, look by look.

It runs `dvc repro`, reads the report's verdicts (metrics/ablation.json), and while a primary comparison is still
open and the design declares a later look (`ablation.looks`), it extends `ablation.seeds` in params.yaml to that
look, taking the next seeds of `ablation.seed_sequence`, and runs again. It stops when every comparison is decided
or the last look is done, and prints one line per look. Seeds are only ever added by this rule, so the family-wise
error the report promises holds over all looks (docs/verdicts.md).

Nothing but params.yaml's `seeds:` line and DVC's own outputs changes, so the final params.yaml, dvc.lock and
metrics/ describe the study and can be committed. Interrupted (Ctrl-C) between or during looks, it leaves params.yaml
at the look in progress; running it again resumes: DVC skips what is done and the training stages resume from their
checkpoints.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

from ..core.errors import UserError
from ..core.paths import PARAMS_FILE

DESCRIPTION = __doc__.split("\n\n")[0]
REPORT = Path("metrics/ablation.json")  # the report stage's output (dvc.yaml), from the repository root


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("study", help="run the declared study look by look (dvc repro, then more seeds by "
                              "the declared rule while a comparison is open)", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--params", default=PARAMS_FILE, metavar="PATH",
                   help=f"the params file DVC reads (default: {PARAMS_FILE}); its `ablation.seeds` line is extended")
    p.set_defaults(run=run)


def set_seeds(text: str, seeds: list[int]) -> str:
    """params.yaml's text with `ablation.seeds` set to `seeds`, every other line (comments included) as it was."""
    block = re.search(r"^ablation:[^\n]*\n((?:[ \t]+[^\n]*\n|[ \t]*\n)*)", text, flags=re.M)
    line = block and re.search(r"^([ \t]+seeds:[ \t]*)(\[[^\]\n]*\]|[^#\n]*?)([ \t]*(?:#[^\n]*)?)$", block.group(1),
                               flags=re.M)
    if line is None:
        raise UserError("study: params.yaml has no `seeds: [...]` line under `ablation:` to extend; write the seeds "
                        "as one flow-style list, e.g. `seeds: [10, 11, 12, 13, 14]`")
    start = block.start(1) + line.start(2)
    return text[:start] + "[" + ", ".join(map(str, seeds)) + "]" + text[block.start(1) + line.end(2):]


def look_line(report: dict) -> tuple[str, list[str]]:
    """One line about the look the report made, and the comparisons it left open."""
    design, verdicts = report["design"], report["verdicts"]
    open_ = [name.replace("_vs_", " vs ") for name, v in verdicts.items() if v["verdict"] == "open"]
    decided = [f"{name.replace('_vs_', ' vs ')}: {v['outcome']}" for name, v in verdicts.items()
               if v["verdict"] != "open"]
    n = len(design["seeds"])
    line = f"look at {n} seeds per variant: " + ("; ".join(decided) if decided else "nothing decided")
    if open_:
        line += f"; open: {', '.join(open_)}"
    return line, open_


def _dvc() -> str:
    """DVC of this environment (the venv's, beside its python), else the one on PATH."""
    local = Path(sys.executable).parent / "dvc"
    return str(local) if local.exists() else "dvc"


def _repro() -> None:
    result = subprocess.run([_dvc(), "repro"])
    if result.returncode:
        raise UserError(f"study: `dvc repro` failed (exit {result.returncode}, its error above); params.yaml holds "
                        f"the look in progress, so `dcgan-lab study` resumes it once that is fixed")


def read_report() -> dict:
    try:
        return json.loads(REPORT.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"study: {REPORT} unreadable after `dvc repro` ({type(exc).__name__}: {exc})") from exc


def run(args: argparse.Namespace) -> None:
    try:
        _looks(Path(args.params))
    except KeyboardInterrupt:
        raise UserError("study: interrupted; params.yaml holds the look in progress: `dcgan-lab study` resumes it "
                        "(DVC skips what is done, training resumes from its checkpoints)") from None


def _looks(params_path: Path) -> None:
    from ..core.params import load_params
    from ..reporting.design import next_look  # the report's own rule: the first look above the seeds run

    while True:
        ablation = load_params(params_path).ablation  # validated: looks increasing, seeds a prefix of the sequence
        seeds = list(ablation.seeds)
        _repro()
        line, open_ = look_line(read_report())
        print(f"study: {line}", flush=True)
        following = next_look(tuple(ablation.looks or ()), len(seeds))
        if not open_:
            print("study: done, every primary comparison is decided")
            return
        if following is None:
            print(f"study: done, the last declared look ({len(seeds)} seeds) is run; what is open stays inconclusive")
            return
        more = list(ablation.seed_sequence[:following])
        params_path.write_text(set_seeds(params_path.read_text(), more))
        print(f"study: {len(open_)} comparison(s) open: the next declared look, {following} seeds per variant "
              f"(ablation.seeds = {more})", flush=True)
