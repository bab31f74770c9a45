"""Stage train@<variant>-<seed>: one DCGAN variant from params `data`, `model`, `train`, `variants.<variant>`."""

import argparse
import os
from pathlib import Path

from dcgan_lab.core import paths
from dcgan_lab.core.device import resolve_device
from dcgan_lab.core.stage import run_stage
from dcgan_lab.data.splits import load_split, read_manifest, selection_split, split_sha256
from dcgan_lab.evaluation.fidelity import QuickFID
from dcgan_lab.tracking.provenance import run_tags
from dcgan_lab.training import distributed
from dcgan_lab.training.run import train_variant
from dcgan_lab.training.spec import RunSpec


def main(params, args):
    params.variant(args.variant)  # fail on an unknown variant before loading anything
    # The run, resolved once from params and the prepared data; the training code reads it, not params.
    spec = RunSpec.for_data(params, args.variant, args.seed, read_manifest(Path(args.data)))
    world = distributed.init(spec.train.device)  # one process, or this rank under torchrun
    try:
        train(spec, params, args, world)
    finally:
        distributed.shutdown()


def train(spec, params, args, world):
    data = Path(args.data)
    run = paths.run_paths(args.variant, args.seed, Path(args.models), Path(args.checkpoints), Path(args.metrics))
    quick_fid = None
    if spec.train.eval_every and world.is_main:
        # Model selection on the val split, so the test split used by `evaluate` stays unseen.
        split = selection_split(data)
        images, labels = load_split(data, split)
        quick_fid = QuickFID(images, split_sha256(data, split), params.evaluate,
                             paths.classifier_checkpoint(Path(args.classifier)), spec.train.eval_samples,
                             resolve_device(spec.train.device), real_labels=labels)
    tags = run_tags(dict(os.environ), Path.cwd(), Path(args.params), data) if world.is_main else {}
    summary = train_variant(spec, data, run, quick_fid=quick_fid, world=world, tags=tags)
    if summary is None:  # not rank 0
        return
    best = f", best quick FID {summary['best_fid_quick']} at step {summary['best_step']}" if quick_fid else ""
    print(f"{args.variant} seed {args.seed}: {summary['steps']} steps in {summary['train_seconds']} s "
          f"({summary['images_per_sec']} img/s on {summary['device']}){best}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variant", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--data", required=True, help="the prepared data directory")
    parser.add_argument("--classifier", required=True, help="the classifier directory (quick FID)")
    parser.add_argument("--models", required=True, help="models root: <models>/<variant>/seed<k>/")
    parser.add_argument("--checkpoints", required=True, help="resumable checkpoints root")
    parser.add_argument("--metrics", required=True, help="training metrics root: <metrics>/<variant>/seed<k>.json")
    run_stage(main, parser)
