"""Stage train@<variant>: one DCGAN variant from params `data`, `model`, `train`, `variants.<variant>`."""

import argparse
from pathlib import Path

from dcgan_lab.cli import run_stage
from dcgan_lab.train import train_variant


def main(params, args):
    summary = train_variant(
        params, args.variant, data_dir=Path(args.data), out_dir=Path("models") / args.variant,
        metrics_path=Path("metrics/train") / f"{args.variant}.json",
        losses_path=Path("metrics/train") / f"{args.variant}_losses.csv",
    )
    print(f"{args.variant}: {summary['steps']} steps in {summary['train_seconds']} s "
          f"({summary['images_per_sec']} img/s on {summary['device']})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variant", required=True)
    parser.add_argument("--data", default="data/prepared")
    run_stage(main, parser)
