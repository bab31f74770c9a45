"""bench_eval: wall time of our evaluation of one generator vs torch-fidelity called directly.

Ours is `dcgan_lab.evaluation.evaluate.evaluate_variant`, what the evaluate stage calls per checkpoint: it generates
`evaluate.n_samples` images, hands them with the real split to torch-fidelity (FID, IS, KID,
precision/recall) through the registered `dcgan-lab-classifier` extractor, and adds class coverage from
the logits torch-fidelity extracted (no second pass of the classifier).
The reference is one `torch_fidelity.calculate_metrics` call on the *same* samples (generated beforehand,
untimed), the same real images, extractor, metrics and settings, written as a user would write it.

Ours runs with an empty real-feature cache (a fresh `cache_root`), so both sides extract the real
split's features; the row "warm cache" shows the common case in the stage, where the real split's
features were cached by an earlier checkpoint.

    python benchmarks/bench_eval.py [--eval-variant final] [--eval-samples 5000] [--eval-repeats 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from torch.utils.data import Dataset

from benchmarks.common import ROOT, Row, report, standalone, summary


class TensorImages(Dataset):
    """What a user hands torch-fidelity: a Dataset of uint8 (C, H, W) tensors."""

    def __init__(self, images: torch.Tensor):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i]


def direct_metrics(fake: torch.Tensor, real: torch.Tensor, cfg, classifier_path: Path, device: torch.device) -> dict:
    import torch_fidelity

    from dcgan_lab.evaluation import classifier

    return torch_fidelity.calculate_metrics(
        input1=TensorImages(fake), input2=TensorImages(real),
        fid=True, isc=True, kid=True, prc=cfg.precision_recall,
        isc_splits=cfg.is_splits, kid_subset_size=min(cfg.kid_subset_size, len(fake), len(real)),
        batch_size=cfg.batch_size, rng_seed=cfg.seed, cuda=device.type == "cuda", verbose=False,
        save_cpu_ram=True,  # as ours: no DataLoader worker processes for in-memory tensors
        feature_extractor=classifier.register(), feature_extractor_weights_path=str(classifier_path),
        feature_layer_fid="features", feature_layer_kid="features", feature_layer_prc="features",
        feature_layer_isc="logits",
    )


def bench(params, device: torch.device, variant: str, n_samples: int | None, repeats: int,
          verbose: bool = True, root: Path = ROOT) -> list[Row]:
    """Rows for `variant`'s checkpoint of the study's first seed (ablation.seeds), from `make repro`'s outputs under
    `root`."""
    from dcgan_lab.core import paths
    from dcgan_lab.evaluation.evaluate import evaluate_variant
    from dcgan_lab.evaluation.reference import load_real
    from dcgan_lab.gan.checkpoint import load_generator
    from dcgan_lab.gan.sampling import generate

    cfg = params.evaluate
    if n_samples:
        cfg = replace(cfg, n_samples=n_samples, n_real=n_samples, is_splits=min(cfg.is_splits, n_samples))
    classifier_path = paths.classifier_checkpoint(root / "models" / "classifier")  # make repro's outputs
    real, sha = load_real(cfg, root / "data" / "prepared")
    real_images = real[0] if cfg.n_real is None else real[0][: cfg.n_real]
    checkpoint = paths.model_dir(root / "models", variant, params.ablation.seeds[0]).checkpoint

    def ours(cache_root: Path) -> tuple[float, dict]:
        g = load_generator(checkpoint)  # as evaluate_runs does, once per checkpoint
        started = time.perf_counter()
        result = evaluate_variant(g, real, sha, cfg, classifier_path, device, cache_root=cache_root)
        return time.perf_counter() - started, result

    # the samples evaluate_variant generates (channels_last as there), handed ready-made to the direct call
    fake = generate(load_generator(checkpoint).to(memory_format=torch.channels_last), cfg.n_samples, cfg.seed,
                    cfg.batch_size, device)

    def generation() -> float:  # the part of ours that the direct call gets ready-made
        g = load_generator(checkpoint).to(memory_format=torch.channels_last)  # as evaluate_variant does
        started = time.perf_counter()
        generate(g, cfg.n_samples, cfg.seed, cfg.batch_size, device)
        return time.perf_counter() - started

    def direct() -> tuple[float, dict]:
        started = time.perf_counter()
        result = direct_metrics(fake, real_images, cfg, classifier_path, device)
        return time.perf_counter() - started, result

    # Warm-up, untimed: the first call of a process pays for lazy imports and one-off kernel set-up,
    # which would otherwise land on whichever side runs first.
    small = replace(cfg, n_samples=200, n_real=200, is_splits=min(cfg.is_splits, 200))
    with tempfile.TemporaryDirectory(prefix="bench-fidelity-") as cache:
        evaluate_variant(load_generator(checkpoint), real, sha, small, classifier_path, device, cache_root=Path(cache))
    direct_metrics(fake[:200], real_images[:200], small, classifier_path, device)

    cold, warm, ref, gen = [], [], [], []
    fids = {}
    for r in range(repeats):
        with tempfile.TemporaryDirectory(prefix="bench-fidelity-") as cache:
            for side in (("ours", "ref") if r % 2 == 0 else ("ref", "ours")):
                if side == "ours":
                    seconds, result = ours(Path(cache))
                    cold.append(seconds)
                    fids["ours"] = result["fid"]
                    seconds_warm, _ = ours(Path(cache))  # the real split's features are cached now
                    warm.append(seconds_warm)
                    gen.append(generation())
                    if verbose:
                        print(f"  eval {variant} repeat {r + 1}/{repeats} ours: {seconds:.2f} s cold cache, "
                              f"{seconds_warm:.2f} s warm; generating the samples alone {gen[-1]:.2f} s", flush=True)
                else:
                    seconds, result = direct()
                    ref.append(seconds)
                    fids["direct"] = result["frechet_inception_distance"]
                    if verbose:
                        print(f"  eval {variant} repeat {r + 1}/{repeats} direct: {seconds:.2f} s", flush=True)

    same = abs(fids["ours"] - fids["direct"]) <= 1e-6 * max(1.0, abs(fids["direct"]))
    sizes = f"{cfg.n_samples} generated vs {len(real_images)} real"
    return [
        Row.compare(f"eval {variant} (s)", "s", summary(cold), summary(ref), 1.05, higher_is_better=False,
                    paired=[a / b for a, b in zip(cold, ref)],
                    note=f"{sizes}; ours includes generating the samples and class coverage, the direct call "
                         f"gets the samples ready-made; same FID on both sides: {same} "
                         f"({fids['ours']:.6g} vs {fids['direct']:.6g})",
                    fid_ours=fids["ours"], fid_direct=fids["direct"], n_samples=cfg.n_samples,
                    n_real=len(real_images)),
        Row.compare(f"eval {variant}, warm real cache (s)", "s", summary(warm), summary(ref), 1.05,
                    higher_is_better=False, paired=[a / b for a, b in zip(warm, ref)],
                    note="the real split's features come from torch-fidelity's cache, as for every checkpoint "
                         "after the first in the evaluate stage"),
        Row.compare(f"eval {variant}, minus generating the samples (s)", "s",
                    summary([c - g for c, g in zip(cold, gen)]), summary(ref), 1.05, higher_is_better=False,
                    note=f"ours (cold cache) less the time to generate the samples, timed on its own right after "
                         f"(median {summary(gen)['median']:.2f} s): what our evaluation adds to the work "
                         "torch-fidelity does when handed the same ready-made samples"),
    ]


def add_arguments(parser: argparse.ArgumentParser, quick: bool) -> None:
    env = os.environ.get
    parser.add_argument("--eval-variant", default=env("BENCH_EVAL_VARIANT", "final"))
    parser.add_argument("--eval-samples", type=int, default=int(env("BENCH_EVAL_SAMPLES", 1000 if quick else 5000)),
                        help="generated and real images (default 5000, quick 1000; 0: params.yaml's "
                             "evaluate.n_samples and n_real, 10000 each, about 3x longer)")
    parser.add_argument("--eval-repeats", type=int, default=int(env("BENCH_EVAL_REPEATS", 1 if quick else 2)))


def main() -> None:
    args, params, device = standalone(__doc__, add_arguments)
    report(bench(params, device, args.eval_variant, args.eval_samples or None, args.eval_repeats), args, device)


if __name__ == "__main__":
    main()
