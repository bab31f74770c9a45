"""`dcgan-lab compare [--metrics metrics/ablation.json] [--metric fid]`: the ablation's verdicts in the
terminal, one line per comparison, read from what the report stage wrote (nothing is recomputed)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..core.errors import UserError

DEFAULT_METRICS = "metrics/ablation.json"  # the report stage's output (dvc.yaml), read from the repository root
# The short names of ablation.json's verdicts -> (label, higher is better)
METRICS = {"fid": ("FID", False), "kid": ("KID", False), "is": ("IS", True), "precision": ("precision", True),
           "recall": ("recall", True)}
DESCRIPTION = """Print the ablation's verdicts from the report stage's metrics/ablation.json: one line per
comparison (each variant against the control, and every later variant against every earlier one), paired
by seed, with the difference, its 95% interval and the Holm-adjusted p."""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("compare", help="the ablation's verdicts (metrics/ablation.json), one line each",
                              description=DESCRIPTION)
    p.add_argument("--metrics", default=DEFAULT_METRICS, metavar="PATH",
                   help=f"the report's JSON (default: {DEFAULT_METRICS})")
    p.add_argument("--metric", default="fid", choices=list(METRICS), help="which metric's verdicts (default: fid)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    report = read_report(Path(args.metrics))
    label, higher = METRICS[args.metric]
    print(f"{label} ({'higher' if higher else 'lower'} is better) in {args.metrics}; difference = first - second "
          f"[95% CI], p Holm-adjusted:")
    for name, entry in report["verdicts"].items():
        print(verdict_line(name, entry, args.metric, report))
    if not report["verdicts"]:
        print("no comparisons: the study has one variant")


def read_report(path: Path) -> dict:
    try:
        report = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"--metrics: {path} not found; the report stage writes it (dvc repro report), or pass "
                        f"--metrics PATH to another ablation.json") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"--metrics: {path} is not readable JSON ({type(exc).__name__}: {exc})") from exc
    if not isinstance(report, dict) or not isinstance(report.get("verdicts"), dict):
        raise UserError(f"--metrics: {path} has no \"verdicts\"; allowed: the report stage's ablation.json")
    return report


def verdict_line(name: str, entry: dict, metric: str, report: dict) -> str:
    """'final vs radford: not distinguishable with 3 seeds (FID +0.65 [−2.04, 3.34], p = 0.82, paired t,
    Holm); about 22 seeds would resolve a difference this size', in the report's own words."""
    from ..reporting.stats import fmt_effect, fmt_num, fmt_p

    variant, other = name.split("_vs_", 1)
    label = METRICS[metric][0]
    outcome, test = entry.get(metric), entry.get(f"{metric}_test", "n/a")
    diff, low, high = (entry.get(f"{metric}_{k}") for k in ("diff", "ci_low", "ci_high"))
    if outcome is None:
        return f"{variant} vs {other}: no {label} verdict in the report"
    seeds = [report.get(v, {}).get("n_seeds", "?") for v in (variant, other)]
    with_seeds = f"{seeds[0]} seeds" if seeds[0] == seeds[1] else f"{seeds[0]} vs {seeds[1]} seeds"
    if outcome == "n/a":
        return f"{variant} vs {other}: n/a with {with_seeds} ({label} {fmt_num(diff, sign=True)}): no test"
    effect = fmt_effect(diff, low, high) if None not in (low, high) else fmt_num(diff, sign=True)
    p = entry.get(f"{metric}_p_holm")
    details = f"{label} {effect}, p " + ("–" if p is None else fmt_p(p) if p < 0.001 else f"= {fmt_p(p)}")
    if outcome != "not distinguishable":
        return f"{variant} vs {other}: {outcome} ({details}, {test}, Holm)"
    line = f"{variant} vs {other}: not distinguishable with {with_seeds} ({details}, {test}, Holm)"
    needed, have = entry.get(f"{metric}_seeds_needed"), min(seeds) if "?" not in seeds else None
    if needed is None or have is None:
        return line
    if needed > have:
        return f"{line}; about {needed} seeds would resolve a difference this size"
    return (f"{line}; borderline (a rough power estimate says {needed} seeds would do, {have} were run): "
            f"a few more seeds should settle it")
