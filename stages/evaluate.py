"""Stage evaluate: FID, IS, KID, precision/recall and class coverage of every variant and seed,
with torch-fidelity -> metrics/eval.{json,csv} and each run's MLflow record."""

import argparse
import json
from pathlib import Path

from dcgan_lab.cli import run_stage
from dcgan_lab.evaluate import evaluate_runs, log_results, write_results


def main(params, args):
    results = evaluate_runs(
        params.evaluate, params.train.device, list(params.variants), list(params.ablation.seeds), Path(args.data),
        Path(args.classifier),
    )
    write_results(results, Path(args.metrics), Path(args.metrics).with_suffix(".csv"))
    accuracy = None
    if Path(args.classifier_metrics).exists():
        accuracy = json.loads(Path(args.classifier_metrics).read_text()).get("test_accuracy")
    log_results(results, accuracy)
    for name, by_seed in results.items():
        for seed, r in by_seed.items():
            print(f"{name} {seed}: FID {r['fid']:.3f}  IS {r['is_mean']:.3f} +- {r['is_std']:.3f}  "
                  f"KID {r['kid_mean']:.4f} +- {r['kid_std']:.4f}  classes {r['classes_covered']}  ({r['extractor']})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="data/prepared")
    parser.add_argument("--classifier", default="models/classifier/classifier.pt")
    parser.add_argument("--classifier-metrics", default="metrics/classifier.json")
    parser.add_argument("--metrics", default="metrics/eval.json")
    run_stage(main, parser)
