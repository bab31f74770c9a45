"""bench_eval: wall time of our evaluation of one generator vs torch-fidelity called directly.

Ours is `dcgan_lab.evaluation.evaluate.evaluate_variant`, what the evaluate stage calls per checkpoint: it generates
`evaluate.n_samples` images, hands them with the real split to torch-fidelity (FID, IS, KID,
precision/recall) through the registered `dcgan-lab-classifier` extractor, and adds, from the features
torch-fidelity extracted (no second pass), class coverage, the per-class FID, precision/recall and diversity,
and FID∞.

The reference is one `torch_fidelity.calculate_metrics` call for the same metrics, with the same real images,
extractor and settings, written as a user would write it, in two forms:
- scoring the generator: torch-fidelity draws the noise and generates the samples itself, from the same
  generator wrapped in its `GenerativeModelModuleWrapper` (the same work as ours; other noise, so another FID);
- handed the samples ours generates, ready-made (untimed): the same FID as ours exactly, less work than ours.

Ours runs with an empty real-feature cache (a fresh `cache_root`), so both sides extract the real
split's features; the row "warm cache" shows the common case in the stage, where the reference stage cached
the real split's features. Both sides run in one process under the stage's setting (freed memory kept,
evaluation/process.py); the sides take turns, a different one first in each repeat.

    python benchmarks/bench_eval.py [--eval-variant final] [--eval-samples 5000] [--eval-repeats 3]
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


def direct_metrics(fake, real: torch.Tensor, cfg, classifier_path: Path, device: torch.device) -> dict:
    """torch-fidelity's FID, IS, KID and precision/recall of `fake` (a Dataset of samples, or a generator in
    its GenerativeModelModuleWrapper: then it draws cfg.n_samples itself) against `real`, in our extractor."""
    import torch_fidelity

    from dcgan_lab.evaluation import classifier

    generated = isinstance(fake, torch_fidelity.GenerativeModelModuleWrapper)
    return torch_fidelity.calculate_metrics(
        input1=fake if generated else TensorImages(fake), input2=TensorImages(real),
        **({"input1_model_num_samples": cfg.n_samples} if generated else {}),
        fid=True, isc=True, kid=True, prc=cfg.precision_recall,
        isc_splits=cfg.is_splits, kid_subset_size=min(cfg.kid_subset_size, cfg.n_samples, len(real)),
        batch_size=cfg.batch_size, rng_seed=cfg.seed, cuda=device.type == "cuda", verbose=False,
        save_cpu_ram=True,  # as ours: no DataLoader worker processes for in-memory tensors
        feature_extractor=classifier.register(), feature_extractor_weights_path=str(classifier_path),
        feature_layer_fid="features", feature_layer_kid="features", feature_layer_prc="features",
        feature_layer_isc="logits",
    )


class AsUint8(torch.nn.Module):
    """Our generator as torch-fidelity wants one: noise (and for a conditional G, labels) in, uint8 images out."""

    def __init__(self, g):
        from dcgan_lab.gan.pixels import to_uint8

        super().__init__()
        self.g, self.to_uint8 = g, to_uint8

    def forward(self, z, y=None):
        return self.to_uint8(self.g(z) if y is None else self.g(z, y), self.g.spec.pixel_range)


def bench(params, device: torch.device, variant: str, n_samples: int | None, repeats: int,
          verbose: bool = True, root: Path = ROOT) -> list[Row]:
    """Rows for `variant`'s checkpoint of the study's first seed (ablation.seeds), from `make repro`'s outputs under
    `root`."""
    import torch_fidelity

    from dcgan_lab.core import paths
    from dcgan_lab.evaluation.evaluate import evaluate_variant
    from dcgan_lab.evaluation.process import keep_freed_memory
    from dcgan_lab.evaluation.reference import load_real
    from dcgan_lab.gan.checkpoint import load_generator
    from dcgan_lab.gan.sampling import generate

    keep_freed_memory()  # as the evaluate stage does first, for both sides
    cfg = params.evaluate
    if n_samples:
        cfg = replace(cfg, n_samples=n_samples, n_real=n_samples, is_splits=min(cfg.is_splits, n_samples))
    classifier_path = paths.classifier_checkpoint(root / "models" / "classifier")  # make repro's outputs
    real, sha = load_real(cfg, root / "data" / "prepared")
    real_images = real[0] if cfg.n_real is None else real[0][: cfg.n_real]
    checkpoint = paths.model_dir(root / "models", variant, params.ablation.seeds[0]).checkpoint

    def channels_last_generator():  # as evaluate_variant turns it
        return load_generator(checkpoint).to(memory_format=torch.channels_last)

    def ours(cache_root: Path) -> tuple[float, dict]:
        g = load_generator(checkpoint)  # as evaluate_runs does, once per checkpoint
        started = time.perf_counter()
        result = evaluate_variant(g, real, sha, cfg, classifier_path, device, cache_root=cache_root)
        return time.perf_counter() - started, result

    # the samples evaluate_variant generates, handed ready-made to the direct call
    fake = generate(channels_last_generator(), cfg.n_samples, cfg.seed, cfg.batch_size, device)

    def generation() -> float:  # the part of ours that the ready-made direct call does not do
        g = channels_last_generator()
        started = time.perf_counter()
        generate(g, cfg.n_samples, cfg.seed, cfg.batch_size, device)
        return time.perf_counter() - started

    def direct(c=cfg) -> tuple[float, dict]:
        started = time.perf_counter()
        result = direct_metrics(fake[: c.n_samples], real_images[: c.n_real], c, classifier_path, device)
        return time.perf_counter() - started, result

    def direct_generating(c=cfg) -> tuple[float, dict]:
        g = channels_last_generator()
        started = time.perf_counter()
        wrapped = torch_fidelity.GenerativeModelModuleWrapper(AsUint8(g), g.spec.latent_dim, "normal",
                                                              g.spec.n_classes)
        result = direct_metrics(wrapped, real_images[: c.n_real], c, classifier_path, device)
        return time.perf_counter() - started, result

    # Warm-up, untimed: the first call of a process pays for lazy imports and one-off kernel set-up,
    # which would otherwise land on whichever side runs first.
    small = replace(cfg, n_samples=200, n_real=200, is_splits=min(cfg.is_splits, 200))
    with tempfile.TemporaryDirectory(prefix="bench-fidelity-") as cache:
        evaluate_variant(load_generator(checkpoint), real, sha, small, classifier_path, device, cache_root=Path(cache))
    direct(small), direct_generating(small)

    times = {side: [] for side in ("cold", "warm", "generation", "ready", "generating")}
    fids = {}
    sides = ("ours", "generating", "ready")
    for r in range(repeats):
        with tempfile.TemporaryDirectory(prefix="bench-fidelity-") as cache:
            for side in sides[r % 3:] + sides[: r % 3]:
                if side == "ours":
                    seconds, result = ours(Path(cache))
                    times["cold"].append(seconds)
                    fids["ours"] = result["fid"]
                    times["warm"].append(ours(Path(cache))[0])  # the real split's features are cached now
                    times["generation"].append(generation())
                    said = (f"{seconds:.2f} s cold cache, {times['warm'][-1]:.2f} s warm; generating the samples "
                            f"alone {times['generation'][-1]:.2f} s")
                else:
                    seconds, result = (direct_generating if side == "generating" else direct)()
                    times[side].append(seconds)
                    fids[side] = result["frechet_inception_distance"]
                    said = f"{seconds:.2f} s"
                if verbose:
                    print(f"  eval {variant} repeat {r + 1}/{repeats} "
                          f"{'direct, ' + side if side != 'ours' else 'ours'}: {said}", flush=True)

    cold, warm, gen, ready, generating = (times[k] for k in ("cold", "warm", "generation", "ready", "generating"))
    same = abs(fids["ours"] - fids["ready"]) <= 1e-6 * max(1.0, abs(fids["ready"]))
    sizes = f"{cfg.n_samples} generated vs {len(real_images)} real"
    return [
        Row.compare(f"eval {variant} (s)", "s", summary(cold), summary(generating), 1.05, higher_is_better=False,
                    paired=[a / b for a, b in zip(cold, generating)],
                    note=f"{sizes}; the direct call generates the samples itself from the same generator "
                         f"(GenerativeModelModuleWrapper, its own noise: FID {fids['generating']:.6g}); ours "
                         f"adds class coverage, the per-class scores and FID∞; same FID as torch-fidelity handed "
                         f"our samples ready-made: {same} ({fids['ours']:.6g} vs {fids['ready']:.6g})",
                    fid_ours=fids["ours"], fid_direct=fids["ready"], fid_direct_generating=fids["generating"],
                    n_samples=cfg.n_samples, n_real=len(real_images)),
        Row.compare(f"eval {variant}, warm real cache (s)", "s", summary(warm), summary(generating), 1.05,
                    higher_is_better=False, paired=[a / b for a, b in zip(warm, generating)],
                    note="the real split's features come from torch-fidelity's cache, as in every evaluate stage "
                         "(the reference stage cached them)"),
        Row.compare(f"eval {variant}, vs ready-made samples (s)", "s", summary(cold), summary(ready), 1.05,
                    higher_is_better=False, paired=[a / b for a, b in zip(cold, ready)],
                    note=f"the direct call handed the samples ours generated (untimed): ours does more, generating "
                         f"them (median {summary(gen)['median']:.2f} s, timed alone right after)",
                    generation=summary(gen)),
    ]


def add_arguments(parser: argparse.ArgumentParser, quick: bool) -> None:
    env = os.environ.get
    parser.add_argument("--eval-variant", default=env("BENCH_EVAL_VARIANT", "final"))
    parser.add_argument("--eval-samples", type=int, default=int(env("BENCH_EVAL_SAMPLES", 1000 if quick else 5000)),
                        help="generated and real images (default 5000, quick 1000; 0: params.yaml's "
                             "evaluate.n_samples and n_real, 10000 each, about 3x longer)")
    parser.add_argument("--eval-repeats", type=int, default=int(env("BENCH_EVAL_REPEATS", 1 if quick else 3)))


def main() -> None:
    args, params, device = standalone(__doc__, add_arguments)
    report(bench(params, device, args.eval_variant, args.eval_samples or None, args.eval_repeats), args, device)


if __name__ == "__main__":
    main()
