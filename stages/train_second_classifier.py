"""Stage train_second_classifier: the second, independent feature space (evaluate.second_extractor), a classifier of
another family and training than the first (second_classifier in params.yaml)."""

import argparse
import json
from pathlib import Path

from dcgan_lab.core import paths
from dcgan_lab.core.device import resolve_device
from dcgan_lab.core.files import atomic_write_text, ensure_writable
from dcgan_lab.core.stage import run_stage
from dcgan_lab.data.splits import load_split, read_manifest
from dcgan_lab.evaluation.second_space import (check_second_accuracy, save_second_classifier,
                                              train_second_classifier)


def main(params, args):
    data = Path(args.data)
    manifest = read_manifest(data)
    ensure_writable(Path(args.out), Path(args.metrics).parent)  # before training, not after
    model, metrics = train_second_classifier(
        params.second_classifier, load_split(data, "train"), load_split(data, "test"),
        n_classes=len(manifest["classes"]), device=resolve_device(params.train.device),
    )
    metrics["dataset"] = manifest["dataset"]
    check_second_accuracy(metrics, params.second_classifier.min_accuracy)
    save_second_classifier(model, paths.classifier_checkpoint(Path(args.out)), **metrics)
    atomic_write_text(Path(args.metrics), json.dumps(metrics, indent=2) + "\n")
    print(f"second classifier ({metrics['extractor']}, {metrics['feature_dim']}-d features) test accuracy "
          f"{metrics['test_accuracy']:.4f} ({metrics['train_seconds']} s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="the prepared data directory")
    parser.add_argument("--out", required=True, help="where classifier.pt goes, e.g. models/second_classifier")
    parser.add_argument("--metrics", required=True, help="its metrics file, e.g. metrics/second_classifier.json")
    run_stage(main, parser)
