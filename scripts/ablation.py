"""`make ablation`: a grid of params through DVC's experiment queue, then one report across the experiments.

    python scripts/ablation.py --grid 'data.pixel_range=[-1,1]|[0,1]' --seeds '[0,1,2]' -j 2
    python scripts/ablation.py --report-only --grid 'data.pixel_range=[-1,1]|[0,1]'   # report what exists

Each grid point is one experiment that trains every variant with every seed; the report
(reports/experiments.{md,csv}) has one line per experiment and variant, mean ± 95% CI over seeds.
"""

import argparse
import sys
from pathlib import Path

from dcgan_lab.core.errors import UserError
from dcgan_lab.reporting.experiments import collect, grid_points, parse_axes, render, run_queue


def main(args) -> None:
    import dvc.api

    axes = parse_axes(args.grid)
    if not args.report_only:
        # A grid is exploratory: on seeds of its own it runs a fixed design (params.yaml's looks need its seeds)
        fixed = {"ablation.seeds": args.seeds, "ablation.looks": "null"} if args.seeds else {}
        points = grid_points(axes)
        print(f"queueing {len(points)} experiments ({' x '.join(f'{k}: {len(v)}' for k, v in axes.items())}), "
              f"{args.jobs} at a time")
        print(run_queue(points, fixed, args.jobs, Path(".")))
    table = collect(dvc.api.exp_show(repo="."), list(axes))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "experiments.csv", index=False, float_format="%.6g")
    (out / "experiments.md").write_text(render(table, list(axes)))
    print((out / "experiments.md").read_text())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", action="append", default=[],
                        help="key=value1|value2|...; repeat for more axes (default: data.pixel_range)")
    parser.add_argument("--seeds", default="[0,1,2]", help="ablation.seeds for every experiment, a fixed design "
                        "(ablation.looks=null); '' keeps params.yaml's seeds and looks")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="experiments run at once (dvc queue start -j)")
    parser.add_argument("--out", default="reports", help="where experiments.{md,csv} go")
    parser.add_argument("--report-only", action="store_true", help="only collect and report finished experiments")
    args = parser.parse_args()
    args.grid = args.grid or ["data.pixel_range=[-1,1]|[0,1]"]
    try:
        main(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
