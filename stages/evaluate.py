"""Stage evaluate@<variant>-<seed>: FID, IS, KID, precision/recall, class coverage and per-class FID of one run's
last, best and EMA generators, with torch-fidelity -> <metrics>/eval/<variant>/seed<k>.json and the run's MLflow
record; with evaluate.second_extractor, FID/KID/IS/precision/recall again in the second classifier's feature space.
The real split's features come from the reference stage's cache (--features)."""

import argparse
import os
from pathlib import Path

from dcgan_lab.core import paths
from dcgan_lab.core.stage import run_stage
from dcgan_lab.evaluation.evaluate import evaluate_run_stage
from dcgan_lab.tracking.provenance import run_tags


def main(params, args):
    data = Path(args.data)
    tags = run_tags(dict(os.environ), Path.cwd(), Path(args.params), data)
    r = evaluate_run_stage(params, args.variant, args.seed, data, Path(args.classifier), Path(args.models),
                           paths.EvalPaths(Path(args.metrics)), Path(args.features), tags,
                           Path(args.second_classifier) if args.second_classifier else None)
    intra = "n/a" if r["intra_fid_mean"] is None else f"{r['intra_fid_mean']:.3f}"
    accuracy = f"  conditional accuracy {r['conditional_accuracy']:.3f}" if "conditional_accuracy" in r else ""
    ema = f"  EMA FID {r['ema_fid']:.3f}" if "ema_fid" in r else ""
    ema += f" (second space {r['ema_second_fid']:.3f})" if "ema_second_fid" in r else ""
    print(f"{args.variant} seed {args.seed}: FID {r['fid']:.3f}{ema}  IS {r['is_mean']:.3f} +- {r['is_std']:.3f}  "
          f"KID {r['kid_mean']:.4f} +- {r['kid_std']:.4f}  classes {r['classes_covered']}  "
          f"intra-FID {intra} ({r['intra_fid_classes']} classes, by {r['intra_fid_grouping']}){accuracy}  "
          f"({r['extractor']})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variant", required=True, help="a variant of params.yaml `variants:`")
    parser.add_argument("--seed", required=True, type=int, help="the run's seed")
    parser.add_argument("--data", required=True, help="the prepared data directory")
    parser.add_argument("--classifier", required=True, help="the classifier directory")
    parser.add_argument("--second-classifier", help="the second classifier's directory (evaluate.second_extractor)")
    parser.add_argument("--models", required=True, help="models root: <models>/<variant>/seed<k>/")
    parser.add_argument("--features", required=True, help="the reference stage's cached real-split features")
    parser.add_argument("--metrics", required=True, help="metrics root: writes <metrics>/eval/<variant>/seed<k>.json")
    run_stage(main, parser)
