"""Stage train_classifier: the domain classifier whose features FID/IS are measured in."""

import argparse
import json
from pathlib import Path

from dcgan_lab.cli import run_stage
from dcgan_lab.classifier import save_classifier, train_classifier
from dcgan_lab.data import load_split
from dcgan_lab.errors import UserError
from dcgan_lab.train import resolve_device


def main(params, args):
    data = Path(args.data)
    manifest = json.loads((data / "manifest.json").read_text())
    model, metrics = train_classifier(
        params.classifier, load_split(data, "train"), load_split(data, "test"),
        n_classes=len(manifest["classes"]), device=resolve_device(params.train.device),
    )
    metrics["dataset"] = manifest["dataset"]
    if metrics["test_accuracy"] < params.classifier.min_accuracy:
        raise UserError(
            f"classifier.min_accuracy: test accuracy {metrics['test_accuracy']:.4f} is below "
            f"{params.classifier.min_accuracy}; FID in its feature space would mean little. "
            "Train longer (classifier.epochs) or lower the bar for quick runs"
        )
    save_classifier(model, Path(args.out), **metrics)
    Path(args.metrics).parent.mkdir(parents=True, exist_ok=True)
    Path(args.metrics).write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"classifier test accuracy {metrics['test_accuracy']:.4f} ({metrics['train_seconds']} s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="data/prepared")
    parser.add_argument("--out", default="models/classifier/classifier.pt")
    parser.add_argument("--metrics", default="metrics/classifier.json")
    run_stage(main, parser)
