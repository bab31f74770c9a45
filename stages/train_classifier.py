"""Stage train_classifier: the domain classifier whose features FID/IS are measured in."""

import argparse
import json
from pathlib import Path

from dcgan_lab.core import paths
from dcgan_lab.core.device import resolve_device
from dcgan_lab.core.files import atomic_write_text, ensure_writable
from dcgan_lab.core.stage import run_stage
from dcgan_lab.data.splits import load_split, read_manifest
from dcgan_lab.evaluation.classifier import check_accuracy, save_classifier, train_classifier


def main(params, args):
    data = Path(args.data)
    manifest = read_manifest(data)
    ensure_writable(Path(args.out), Path(args.metrics).parent)  # before training, not after
    model, metrics = train_classifier(
        params.classifier, load_split(data, "train"), load_split(data, "test"),
        n_classes=len(manifest["classes"]), device=resolve_device(params.train.device),
    )
    metrics["dataset"] = manifest["dataset"]
    check_accuracy(metrics, params.classifier.min_accuracy)
    save_classifier(model, paths.classifier_checkpoint(Path(args.out)), **metrics)
    atomic_write_text(Path(args.metrics), json.dumps(metrics, indent=2) + "\n")
    print(f"classifier test accuracy {metrics['test_accuracy']:.4f} ({metrics['train_seconds']} s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="the prepared data directory")
    parser.add_argument("--out", required=True, help="where classifier.pt goes, e.g. models/classifier")
    parser.add_argument("--metrics", required=True, help="its metrics file, e.g. metrics/classifier.json")
    run_stage(main, parser)
