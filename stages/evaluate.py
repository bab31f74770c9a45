"""Stage evaluate: FID, IS, KID, precision/recall and class coverage of every variant and seed,
with torch-fidelity -> metrics/eval.{json,csv} and each run's MLflow record."""

import argparse
import json
from pathlib import Path

from dcgan_lab.cli import run_stage
from dcgan_lab.evaluate import evaluate_runs, load_real, log_results, real_reference, write_results
from dcgan_lab.train import resolve_device


def main(params, args):
    cfg, device, classifier = params.evaluate, resolve_device(params.train.device), Path(args.classifier)
    real, sha = load_real(cfg, Path(args.data))
    results = evaluate_runs(cfg, device, list(params.variants), list(params.ablation.seeds), real, sha, classifier)
    reference = real_reference(real[0], cfg, classifier, device)
    write_results(results, Path(args.metrics), Path(args.metrics).with_suffix(".csv"))
    Path(args.reference).write_text(json.dumps(reference, indent=2) + "\n")
    accuracy = None
    if Path(args.classifier_metrics).exists():
        accuracy = json.loads(Path(args.classifier_metrics).read_text()).get("test_accuracy")
    version = log_results(results, accuracy, mlflow_cfg=params.mlflow)
    if version:
        print(f"registered the lowest-FID generator as {params.mlflow.model_name} version {version}")
    for name, by_seed in results.items():
        for seed, r in by_seed.items():
            print(f"{name} {seed}: FID {r['fid']:.3f}  IS {r['is_mean']:.3f} +- {r['is_std']:.3f}  "
                  f"KID {r['kid_mean']:.4f} +- {r['kid_std']:.4f}  classes {r['classes_covered']}  ({r['extractor']})")
    print(f"real data ({reference['real_split']}, halves of {reference['n_per_half']}): "
          f"FID {reference['fid_half_vs_half']:.3f}  IS {reference['is_real']:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="data/prepared")
    parser.add_argument("--classifier", default="models/classifier/classifier.pt")
    parser.add_argument("--classifier-metrics", default="metrics/classifier.json")
    parser.add_argument("--metrics", default="metrics/eval.json")
    parser.add_argument("--reference", default="metrics/reference.json")
    run_stage(main, parser)
