"""Stage evaluate: FID and IS of every variant with torch-fidelity -> metrics/eval.{json,csv} + MLflow."""

import argparse
import json
from pathlib import Path

from dcgan_lab.cli import run_stage
from dcgan_lab.data import load_split
from dcgan_lab.evaluate import evaluate_variants, log_results, write_results


def main(params, args):
    classifier_path = Path(args.classifier)
    real, _ = load_split(Path(args.data), params.evaluate.real_split)
    results = evaluate_variants(
        params.evaluate, params.train.device, list(params.variants), Path(args.models), real, classifier_path
    )
    write_results(results, Path(args.metrics), Path(args.metrics).with_suffix(".csv"))
    accuracy = None
    if Path(args.classifier_metrics).exists():
        accuracy = json.loads(Path(args.classifier_metrics).read_text()).get("test_accuracy")
    log_results(results, Path(args.models), accuracy)
    for name, r in results.items():
        print(f"{name}: FID {r['fid']:.3f}  IS {r['is_mean']:.3f} +- {r['is_std']:.3f}  ({r['extractor']})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="data/prepared")
    parser.add_argument("--models", default="models")
    parser.add_argument("--classifier", default="models/classifier/classifier.pt")
    parser.add_argument("--classifier-metrics", default="metrics/classifier.json")
    parser.add_argument("--metrics", default="metrics/eval.json")
    run_stage(main, parser)
