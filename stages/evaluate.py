"""Stage evaluate: FID, IS, KID, precision/recall, class coverage and per-class FID of every variant and seed,
with torch-fidelity -> <metrics>/{eval.json,eval.csv,reference.json} and each run's MLflow record."""

import argparse
import os
from pathlib import Path

from dcgan_lab.core import paths
from dcgan_lab.core.stage import run_stage
from dcgan_lab.evaluation.evaluate import evaluate_stage
from dcgan_lab.tracking.provenance import run_tags


def main(params, args):
    data = Path(args.data)
    tags = run_tags(dict(os.environ), Path.cwd(), Path(args.params), data)
    results, reference, version = evaluate_stage(params, data, Path(args.classifier), Path(args.models),
                                                 paths.EvalPaths(Path(args.metrics)), tags)
    if version:
        print(f"registered the lowest-FID generator as {params.mlflow.model_name} version {version}")
    for name, by_seed in results.items():
        for seed, r in by_seed.items():
            intra = "n/a" if r["intra_fid_mean"] is None else f"{r['intra_fid_mean']:.3f}"
            accuracy = f"  conditional accuracy {r['conditional_accuracy']:.3f}" if "conditional_accuracy" in r else ""
            print(f"{name} {seed}: FID {r['fid']:.3f}  IS {r['is_mean']:.3f} +- {r['is_std']:.3f}  "
                  f"KID {r['kid_mean']:.4f} +- {r['kid_std']:.4f}  classes {r['classes_covered']}  "
                  f"intra-FID {intra} ({r['intra_fid_classes']} classes, by {r['intra_fid_grouping']}){accuracy}  "
                  f"({r['extractor']})")
    print(f"real data ({reference['real_split']}, halves of {reference['n_per_half']}): "
          f"FID {reference['fid_half_vs_half']:.3f}  IS {reference['is_real']:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="the prepared data directory")
    parser.add_argument("--classifier", required=True, help="the classifier directory")
    parser.add_argument("--models", required=True, help="models root: <models>/<variant>/seed<k>/")
    parser.add_argument("--metrics", required=True, help="where eval.json, eval.csv and reference.json go")
    run_stage(main, parser)
