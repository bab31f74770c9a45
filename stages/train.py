"""Stage train@<variant>-<seed>: one DCGAN variant from params `data`, `model`, `train`, `variants.<variant>`."""

import argparse
from pathlib import Path

from dcgan_lab.cli import run_stage
from dcgan_lab.paths import run_paths
from dcgan_lab.train import train_variant


def main(params, args):
    paths = run_paths(args.variant, args.seed)
    summary = train_variant(
        params, args.variant, args.seed, data_dir=Path(args.data), out_dir=paths.model_dir,
        metrics_path=paths.train_metrics, losses_path=paths.losses,
    )
    print(f"{args.variant} seed {args.seed}: {summary['steps']} steps in {summary['train_seconds']} s "
          f"({summary['images_per_sec']} img/s on {summary['device']})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variant", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--data", default="data/prepared")
    run_stage(main, parser)
