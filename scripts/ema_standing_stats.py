"""What standing statistics change in EMA FID: each run's EMA generator scored as its checkpoint holds it and
again after `standing_statistics` (train.ema_bn_batches), under the evaluate stage's protocol.

    python scripts/ema_standing_stats.py --params params.yaml --data data/prepared --models models \
        --classifier models/classifier --eval-json metrics/eval.json

For models trained before train.ema_bn_batches existed (their EMA G holds the live G's statistics), or with
it at 0. The noise seed is the train stage's (state.standing_statistics_seed), so the second column is what
retraining with the same params would save. Prints a markdown table; writes nothing.
"""

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from dcgan_lab.core import paths
from dcgan_lab.core.device import resolve_device
from dcgan_lab.core.errors import UserError
from dcgan_lab.core.params import load_params
from dcgan_lab.evaluation.evaluate import evaluate_variant, load_real
from dcgan_lab.gan.checkpoint import load_generator, load_meta
from dcgan_lab.training.ema import standing_statistics
from dcgan_lab.training.state import standing_statistics_seed


def compare(params, data: Path, models: Path, classifier_dir: Path, n_batches: int) -> pd.DataFrame:
    """One row per (variant, seed) of the ablation: EMA FID with the copied and with standing statistics."""
    cfg, device = params.evaluate, resolve_device(params.train.device)
    real, sha = load_real(cfg, data)
    classifier = paths.classifier_checkpoint(classifier_dir)
    rows = []
    for variant in params.ablation.variants:
        for seed in params.ablation.seeds:
            checkpoint = paths.model_dir(models, variant, seed).checkpoint
            batch_size = load_meta(checkpoint)["run"]["train"]["batch_size"]  # the batches it trained on

            def fid(g):
                return evaluate_variant(g, real, sha, cfg, classifier, device)["fid"]

            copied = fid(load_generator(checkpoint, ema=True))
            g = standing_statistics(load_generator(checkpoint, ema=True), n_batches, batch_size,
                                    standing_statistics_seed(seed), device)
            rows.append({"variant": variant, "seed": seed, "ema_fid_copied": copied, "ema_fid_standing": fid(g)})
            print(f"{variant} seed {seed}: {copied:.4f} -> {rows[-1]['ema_fid_standing']:.4f}", file=sys.stderr)
    return pd.DataFrame(rows)


def main(args) -> None:
    params = load_params(args.params)
    n_batches = params.train.ema_bn_batches if args.batches is None else args.batches
    if n_batches < 1:
        raise UserError(f"--batches: {n_batches} batches; allowed: an integer >= 1 (params: train.ema_bn_batches)")
    table = compare(params, Path(args.data), Path(args.models), Path(args.classifier), n_batches)
    if args.eval_json:  # the copied column is what the evaluate stage scored: the same number, or another model
        committed = json.loads(Path(args.eval_json).read_text())
        table["ema_fid_eval_json"] = [committed[v][f"seed{s}"]["ema_fid"] for v, s in zip(table.variant, table.seed)]
    table["change"] = table.ema_fid_standing - table.ema_fid_copied
    means = table.drop(columns="seed").groupby("variant", sort=False).mean().reset_index()
    print(f"standing statistics from {n_batches} batches\n")
    print(table.to_markdown(index=False, floatfmt=".4f"))
    print("\nmeans over seeds, best first by standing statistics:\n")
    print(means.sort_values("ema_fid_standing").to_markdown(index=False, floatfmt=".4f"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", required=True, help="the prepared data directory")
    parser.add_argument("--models", required=True, help="models root: <models>/<variant>/seed<k>/checkpoint.pt")
    parser.add_argument("--classifier", required=True, help="the classifier directory")
    parser.add_argument("--batches", type=int, default=None, help="batches of standing statistics "
                                                                   "(default: train.ema_bn_batches)")
    parser.add_argument("--eval-json", help="metrics/eval.json to compare the copied column with")
    args = parser.parse_args()
    try:
        main(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
