"""FID, IS, KID, precision/recall and class coverage of each variant's generator.

torch-fidelity computes every distribution metric; this module only decides what goes in:
generated images (made once per variant in large batches, kept as uint8, no PNG round trip)
and held-out real images, seen through one feature extractor that every result names.
Features of the real split are cached by torch-fidelity under a name built from the split's
sha256 and the extractor's weights, so a changed data set or extractor never reuses stale ones.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pandas as pd
import torch
import torch_fidelity
from torch.utils.data import Dataset

from . import classifier
from .checkpoint import load_generator
from .config import EvaluateConfig
from .data import default_cache_dir, sha256_file
from .errors import EvaluationError
from .models import Generator
from .train import resolve_device, to_uint8

INCEPTION = "inception-v3-compat"
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
SCORES = ("fid", "is_mean", "is_std", "kid_mean", "kid_std", "precision", "recall", "classes_covered",
          "class_kl_uniform", "class_kl_real")


class Uint8Images(Dataset):
    """A uint8 (N, C, S, S) tensor as a Dataset of (C, S, S) items; 3 channels when rgb (Inception)."""

    def __init__(self, images: torch.Tensor, rgb: bool = False):
        self.images, self.rgb = images, rgb

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        x = self.images[i]
        return x.expand(3, -1, -1) if self.rgb and x.shape[0] == 1 else x


@torch.inference_mode()
def generate(g: Generator, n: int, seed: int, batch_size: int, device: torch.device) -> torch.Tensor:
    """n samples of G in eval mode as uint8 (n, C, S, S) on the CPU; noise from a seeded generator."""
    g = g.to(device).eval()
    pixel_range = (-1.0, 1.0) if g.spec.output == "tanh" else (0.0, 1.0)
    noise = torch.Generator(device=device).manual_seed(seed)
    chunks = []
    for start in range(0, n, batch_size):
        z = torch.randn(min(batch_size, n - start), g.spec.latent_dim, device=device, generator=noise)
        chunks.append(to_uint8(g(z), pixel_range).cpu())
    return torch.cat(chunks)


def inception_weights(cfg: EvaluateConfig) -> Path:
    """The Inception weights torch-fidelity would download, from a path or torch's hub cache."""
    cached = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
    path = Path(cfg.inception_weights) if cfg.inception_weights else cached
    if not path.exists():
        raise EvaluationError(
            f"evaluate.feature_extractor=inception: Inception weights not found at {path}; "
            f"download {INCEPTION_FILE} (torch-fidelity's release) to {cached} or set evaluate.inception_weights, "
            "or use evaluate.feature_extractor: classifier"
        )
    return path


def extractor_kwargs(cfg: EvaluateConfig, classifier_path: Path) -> dict:
    """torch-fidelity arguments that choose the feature extractor, its weights and its layers."""
    if cfg.feature_extractor == "inception":
        return {
            "feature_extractor": INCEPTION,
            "feature_extractor_weights_path": str(inception_weights(cfg)),
            "feature_layer_fid": "2048",
            "feature_layer_kid": "2048",
            "feature_layer_prc": "2048",
            "feature_layer_isc": "logits_unbiased",
        }
    return {
        "feature_extractor": classifier.register(),
        "feature_extractor_weights_path": str(classifier_path),
        "feature_layer_fid": "features",
        "feature_layer_kid": "features",
        "feature_layer_prc": "features",
        "feature_layer_isc": "logits",
    }


def reference_cache_name(kwargs: dict, split_sha256: str, n_real: int) -> str:
    """Name of the cached real-split features: changes with the data, the subset and the extractor's weights."""
    weights = sha256_file(Path(kwargs["feature_extractor_weights_path"]))
    key = hashlib.sha256(f"{split_sha256}|{n_real}|{kwargs['feature_extractor']}|{weights}".encode()).hexdigest()
    return f"dcgan-lab-real-{key[:24]}"


def fidelity_metrics(
    fake: torch.Tensor,  # (N, C, S, S) uint8
    real: torch.Tensor,  # (M, C, S, S) uint8
    kwargs: dict,
    cfg: EvaluateConfig,
    device: torch.device,
    real_cache_name: str | None = None,
    cache_root: Path | None = None,
) -> dict[str, float]:
    """FID, IS, KID and precision/recall of `fake` against `real`, all by torch-fidelity."""
    rgb = kwargs["feature_extractor"] == INCEPTION
    kid_subset = min(cfg.kid_subset_size, len(fake), len(real))
    result = torch_fidelity.calculate_metrics(
        input1=Uint8Images(fake, rgb),
        input2=Uint8Images(real, rgb),
        fid=True,
        isc=True,
        kid=True,
        prc=cfg.precision_recall,
        isc_splits=cfg.is_splits,
        kid_subset_size=kid_subset,
        batch_size=cfg.batch_size,
        rng_seed=cfg.seed,
        cuda=device.type == "cuda",
        cache=real_cache_name is not None,
        cache_root=str(cache_root or default_cache_dir() / "fidelity"),
        input2_cache_name=real_cache_name,
        save_cpu_ram=True,  # no DataLoader worker processes for in-memory tensors
        verbose=False,
        **kwargs,
    )
    out = {
        "fid": result["frechet_inception_distance"],
        "is_mean": result["inception_score_mean"],
        "is_std": result["inception_score_std"],
        "kid_mean": result["kernel_inception_distance_mean"],
        "kid_std": result["kernel_inception_distance_std"],
        "kid_subset_size": kid_subset,
    }
    if cfg.precision_recall:
        out.update(precision=result["precision"], recall=result["recall"])
    return {k: float(v) if k != "kid_subset_size" else v for k, v in out.items()}


@torch.inference_mode()
def class_coverage(fake: torch.Tensor, real_labels: torch.Tensor, model: classifier.Classifier, n_classes: int,
                   device: torch.device, batch_size: int = 1000) -> dict[str, float]:
    """Mode collapse, seen by the domain classifier: how many classes get at least a tenth of their
    uniform share of the samples, and KL(generated || uniform) and KL(generated || real) of the
    predicted class histogram (0 = the same distribution)."""
    model = model.to(device).eval()
    preds = torch.cat([model(fake[i : i + batch_size].to(device)).argmax(1).cpu()
                       for i in range(0, len(fake), batch_size)])
    p = torch.bincount(preds, minlength=n_classes).double() / len(preds)
    q_real = torch.bincount(real_labels, minlength=n_classes).double() / len(real_labels)
    q_uniform = torch.full_like(p, 1.0 / n_classes)

    def kl(q):
        mask = p > 0
        return float((p[mask] * (p[mask] / q[mask].clamp_min(1e-12)).log()).sum())

    return {
        "classes_covered": int((p >= 0.1 / n_classes).sum()),
        "class_kl_uniform": kl(q_uniform),
        "class_kl_real": kl(q_real),
        "class_histogram": [round(float(v), 5) for v in p],
    }


def evaluate_variant(
    g: Generator,
    real: tuple[torch.Tensor, torch.Tensor],
    split_sha256: str,
    cfg: EvaluateConfig,
    classifier_path: Path,
    device: torch.device,
    cache_root: Path | None = None,
) -> dict:
    """All metrics of one generator, plus the protocol that produced them."""
    images, labels = real
    if cfg.n_real is not None:
        images, labels = images[: cfg.n_real], labels[: cfg.n_real]
    kwargs = extractor_kwargs(cfg, classifier_path)
    fake = generate(g, cfg.n_samples, cfg.seed, cfg.batch_size, device)
    cache_name = reference_cache_name(kwargs, split_sha256, len(images))
    result = fidelity_metrics(fake, images, kwargs, cfg, device, cache_name, cache_root)
    clf = classifier.load_classifier(classifier_path)
    result.update(class_coverage(fake, labels, clf, clf.spec.n_classes, device))
    result.update(
        extractor=kwargs["feature_extractor"],
        fid_features=kwargs["feature_layer_fid"],
        n_samples=cfg.n_samples,
        n_real=len(images),
        real_split=cfg.real_split,
        seed=cfg.seed,
    )
    return result


def evaluate_runs(
    cfg: EvaluateConfig,
    device_name: str,
    variants: list[str],
    seeds: list[int],
    data_dir: Path,
    classifier_path: Path,
    root: Path = Path("."),
) -> dict[str, dict[str, dict]]:
    """{variant: {"seed<k>": metrics}} for every variant and seed of the ablation."""
    from .data import load_split
    from .paths import run_paths

    device = resolve_device(device_name)
    manifest = json.loads((Path(data_dir) / "manifest.json").read_text())
    if cfg.real_split not in manifest["splits"]:
        raise EvaluationError(
            f"evaluate.real_split: {manifest['dataset']} has no {cfg.real_split!r} split; "
            f"allowed here: {', '.join(s for s in manifest['splits'] if s != 'train')}"
        )
    real = load_split(data_dir, cfg.real_split)
    sha = manifest["splits"][cfg.real_split]["sha256"]
    results: dict[str, dict[str, dict]] = {}
    for name in variants:
        for seed in seeds:
            g = load_generator(run_paths(name, seed, root).checkpoint)
            results.setdefault(name, {})[f"seed{seed}"] = evaluate_variant(g, real, sha, cfg, classifier_path, device)
    return results


def write_results(results: dict[str, dict[str, dict]], json_path: Path, csv_path: Path) -> None:
    from .report import ablation_table

    Path(json_path).parent.mkdir(parents=True, exist_ok=True)
    Path(json_path).write_text(json.dumps(results, indent=2) + "\n")
    ablation_table(results).to_csv(csv_path, index=False, float_format="%.6g")


def log_results(results: dict[str, dict[str, dict]], extractor_accuracy: float | None, root: Path = Path(".")) -> None:
    """Scores into the MLflow run that trained each (variant, seed): same metric names across runs."""
    from .paths import run_paths
    from .tracking import RunLogger

    for name, seed_key, r in ((n, s, r) for n, by_seed in results.items() for s, r in by_seed.items()):
        seed = int(seed_key.removeprefix("seed"))
        logger = RunLogger.resume(run_paths(name, seed, root).mlflow_run, name, seed)
        logger.log_metrics([{k: r[k] for k in SCORES if k in r and math.isfinite(r[k])}], [0])
        tags = {f"eval.{k}": r[k] for k in ("extractor", "fid_features", "n_samples", "n_real", "real_split", "seed",
                                            "kid_subset_size")}
        if extractor_accuracy is not None and r["extractor"] == classifier.EXTRACTOR_NAME:
            tags["eval.extractor_test_accuracy"] = extractor_accuracy
        logger.set_tags(tags)
