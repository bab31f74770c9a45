"""Stage report: the ablation across seeds -> <metrics>/ablation.{csv,json,md}, <plots>/*.png, an MLflow run."""

import argparse
import os
from pathlib import Path

from dcgan_lab.core import paths
from dcgan_lab.core.stage import run_stage
from dcgan_lab.reporting.report import write_report
from dcgan_lab.tracking.provenance import run_tags, split_sha256s, study_id


def main(params, args):
    tags = run_tags(dict(os.environ), Path.cwd(), Path(args.params), Path(args.data))
    tags["study"] = study_id(params.ablation, split_sha256s(Path(args.data)))  # the report tags its members too
    print(write_report(params, paths.EvalPaths(Path(args.metrics)), Path(args.train_metrics), Path(args.models),
                       paths.ReportPaths(Path(args.metrics), Path(args.plots)), tags,
                       Path(args.extractor) if args.extractor else None))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="the prepared data directory (its manifest tags the runs)")
    parser.add_argument("--metrics", required=True, help="reads eval.json and reference.json, writes ablation.*")
    parser.add_argument("--train-metrics", required=True, help="training metrics root (per-step losses)")
    parser.add_argument("--models", required=True, help="models root (sample grids, MLflow run ids)")
    parser.add_argument("--plots", required=True, help="where the figures go")
    parser.add_argument("--extractor", default=None,
                        help="the validate_extractor stage's JSON: the report states its checks")
    run_stage(main, parser)
