"""`dcgan-lab compare [--metrics metrics/ablation.json] [--metric KEY] [--against OTHER.json]`: the ablation's
verdicts in the terminal, the sentences the report stage stored in ablation.json, printed as they are (nothing is
recomputed or reworded); with --against, verdict by verdict whether another run of the study (another machine,
another instruction set) reached the same one."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..core.errors import UserError

DEFAULT_METRICS = "metrics/ablation.json"  # the report stage's output (dvc.yaml), read from the repository root
DESCRIPTION = """Print the ablation's verdicts from the report stage's metrics/ablation.json: the declared design
(primary endpoint, margin, alpha, seeds), then one verdict per comparison on the primary endpoint (each variant
against the control, and every later variant against every earlier one). --metric KEY prints a secondary
metric's exploratory lines instead: intervals and seed counts, never a verdict. --against OTHER prints, for each
comparison, whether another run of the same study (an ablation.json from another machine, e.g. `git show
REV:metrics/ablation.json > other.json`) reached the same verdict, with both runs' intervals and p-values."""
DESIGN_KEYS = ("primary", "margin", "alpha", "seeds", "looks")  # what must match for two runs to be one study


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("compare", help="the ablation's verdicts (metrics/ablation.json), one line each",
                              description=DESCRIPTION)
    p.add_argument("--metrics", default=DEFAULT_METRICS, metavar="PATH",
                   help=f"the report's JSON (default: {DEFAULT_METRICS})")
    p.add_argument("--metric", default=None, metavar="KEY",
                   help="a secondary metric's exploratory comparisons (e.g. fid, is, kid; default: the verdicts)")
    p.add_argument("--against", default=None, metavar="PATH",
                   help="another run's ablation.json: does each verdict reproduce there?")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    report = read_report(Path(args.metrics))
    design = report["design"]
    looks = f"; looks at {', '.join(map(str, design['looks']))} seeds per variant" if design.get("looks") else ""
    print(f"{args.metrics}: primary {design['primary']}, margin ±{design['margin']:g}, family-wise alpha "
          f"{design['alpha']:g} over {design['comparisons']} comparisons ({design['correction']}), seeds "
          f"{', '.join(map(str, design['seeds']))}{looks}; difference = first − second")
    if args.against is not None:
        if args.metric is not None:
            raise UserError("--against compares verdicts, which only the primary has; omit --metric")
        lines = agreement_lines(report, read_report(Path(args.against)), Path(args.against))
    elif args.metric is None:
        lines = [entry["sentence"] + (f" — {entry['second_space']['mark']}" if "second_space" in entry else "")
                 for entry in report["verdicts"].values()]  # with the second feature space's mark where there is one
    else:
        lines = exploratory_lines(report, args.metric, Path(args.metrics))
    for line in lines:
        print(line)
    if not report["verdicts"]:
        print("no comparisons: the study has one variant")


def exploratory_lines(report: dict, metric: str, path: Path) -> list[str]:
    entries = report.get("exploratory", {})
    known = sorted({m for by_metric in entries.values() for m in by_metric})
    if entries and metric not in known:
        raise UserError(f"--metric: {metric!r} is not in {path}'s exploratory comparisons; allowed: "
                        f"{', '.join(known)} (the primary, {report['design']['primary']}, has verdicts: omit --metric)")
    return [by_metric[metric]["sentence"] for by_metric in entries.values() if metric in by_metric]


def verdict_label(entry: dict) -> str:
    return f"{entry['winner']} better" if entry["verdict"] == "better" else entry["verdict"]


def numbers(entry: dict) -> str:
    if entry.get("diff") is None:
        return "no estimate"
    p = entry.get("p")
    interval = f"{entry['diff']:+.2f} [{entry['ci_low']:.2f}, {entry['ci_high']:.2f}]".replace("-", "−")
    return interval + ("" if p is None else f" p {p:.2g}")


def agreement_lines(report: dict, other: dict, other_path: Path) -> list[str]:
    """One line per comparison of `report`: the same verdict in `other`, or how they differ; then the count."""
    lines = [f"note: the designs differ ({key}: {report['design'].get(key)} here, {other['design'].get(key)} in "
             f"{other_path}); the verdicts answer different questions"
             for key in DESIGN_KEYS if report["design"].get(key) != other["design"].get(key)]
    same = 0
    for name, entry in report["verdicts"].items():
        there = other["verdicts"].get(name)
        if there is None:
            lines.append(f"{name.replace('_vs_', ' vs ')}: not in {other_path}")
            continue
        agree = verdict_label(entry) == verdict_label(there)
        same += agree
        head = f"same verdict ({verdict_label(entry)})" if agree else \
            f"differs: {verdict_label(entry)} here, {verdict_label(there)} there"
        lines.append(f"{name.replace('_vs_', ' vs ')}: {head}; here {numbers(entry)}, there {numbers(there)}")
    lines.append(f"{same} of {len(report['verdicts'])} verdicts the same in {other_path}")
    return lines


def read_report(path: Path) -> dict:
    try:
        report = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"--metrics: {path} not found; the report stage writes it (dvc repro report), or pass "
                        f"--metrics PATH to another ablation.json") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"--metrics: {path} is not readable JSON ({type(exc).__name__}: {exc})") from exc
    if not isinstance(report, dict) or not isinstance(report.get("verdicts"), dict) or "design" not in report:
        raise UserError(f"--metrics: {path} has no \"design\" and \"verdicts\"; allowed: an ablation.json the "
                        f"report stage wrote (rerun `dvc repro report` if it predates the declared design)")
    return report
