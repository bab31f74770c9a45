"""Stage train@<variant>-<seed>: one DCGAN variant from params `data`, `model`, `train`, `variants.<variant>`."""

import argparse
from pathlib import Path

from dcgan_lab import distributed
from dcgan_lab.cli import run_stage
from dcgan_lab.data import load_split, split_sha256
from dcgan_lab.fidelity import QuickFID
from dcgan_lab.paths import run_paths
from dcgan_lab.train import resolve_device, train_variant


def main(params, args):
    paths = run_paths(args.variant, args.seed)
    params.variant(args.variant)  # fail on an unknown variant before loading anything
    world = distributed.init(params.train.device)  # one process, or this rank under torchrun
    try:
        train(params, args, paths, world)
    finally:
        distributed.shutdown()


def train(params, args, paths, world):
    quick_fid = None
    if params.train.eval_every and world.is_main:
        # Model selection on the val split, so the test split used by `evaluate` stays unseen.
        data = Path(args.data)
        split = "val" if (data / "val.pt").exists() else "test"
        quick_fid = QuickFID(load_split(data, split)[0], split_sha256(data, split), params.evaluate,
                             Path(args.classifier), params.train.eval_samples, resolve_device(params.train.device))
    summary = train_variant(params, args.variant, args.seed, data_dir=Path(args.data), paths=paths,
                            quick_fid=quick_fid, world=world)
    if summary is None:  # not rank 0
        return
    best = f", best quick FID {summary['best_fid_quick']} at step {summary['best_step']}" if quick_fid else ""
    print(f"{args.variant} seed {args.seed}: {summary['steps']} steps in {summary['train_seconds']} s "
          f"({summary['images_per_sec']} img/s on {summary['device']}){best}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variant", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--data", default="data/prepared")
    parser.add_argument("--classifier", default="models/classifier/classifier.pt")
    run_stage(main, parser)
