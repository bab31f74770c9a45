"""The held-out real split the generators are scored against: loading it, its real-vs-real floor in each feature
space, its features cached once for every evaluate@ stage (the reference stage), and the checks an evaluate@ stage
makes before it reads them.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import torch

from ..core import paths
from ..core.config import EvaluateConfig, Params
from ..core.device import resolve_device
from ..core.errors import DataError, EvaluationError
from ..core.files import atomic_write_text, ensure_writable
from ..core.metrics import SECOND, SECOND_SPACE
from ..data.splits import load_split, read_manifest
from . import classifier, second_space
from .fidelity import cache_real_features, cached_files, extractor_kwargs, fidelity_metrics, reference_cache_name
from .process import keep_freed_memory


def load_real(cfg: EvaluateConfig, data_dir: Path) -> tuple[tuple[torch.Tensor, torch.Tensor], str]:
    """The held-out split the generators are compared with, and its sha256 (from the manifest)."""
    manifest = read_manifest(data_dir)
    if cfg.real_split not in manifest["splits"]:
        raise EvaluationError(
            f"evaluate.real_split: {manifest['dataset']} has no {cfg.real_split!r} split; "
            f"allowed here: {', '.join(s for s in manifest['splits'] if s != 'train')}"
        )
    return load_split(data_dir, cfg.real_split), manifest["splits"][cfg.real_split]["sha256"]


def real_reference(real: torch.Tensor, cfg: EvaluateConfig, classifier_path: Path, device: torch.device) -> dict:
    """What real data scores under the same extractor: FID/KID between two halves of the real split
    (a floor for sample sets of that size) and IS of the first half (a ceiling)."""
    images = real if cfg.n_real is None else real[: cfg.n_real]
    half = len(images) // 2
    m, _, _ = fidelity_metrics(images[:half], images[half : 2 * half], extractor_kwargs(cfg, classifier_path),
                               replace(cfg, precision_recall=False), device)
    return {"fid_half_vs_half": m["fid"], "kid_half_vs_half": m["kid_mean"], "is_real": m["is_mean"],
            "n_per_half": half, "real_split": cfg.real_split}


def reference_stage(params: Params, data_dir: Path, classifier_dir: Path, out: paths.EvalPaths,
                    features: Path, second_dir: Path | None = None) -> dict:
    """The reference stage: what the real split scores against itself (reference.json: the real-vs-real floor, IS of
    real images), and its features in torch-fidelity's cache under `features`, which every evaluate@ stage reads;
    with evaluate.second_extractor the same in the second space (`second_dir`), under reference.json's "second".
    Freed memory stays in the process (process.py)."""
    keep_freed_memory()
    cfg, device = params.evaluate, resolve_device(params.train.device)
    classifier_path = paths.classifier_checkpoint(classifier_dir)
    classifier.load_classifier(classifier_path)
    second = second_checkpoint(cfg, second_dir)
    ensure_writable(out.metrics, features.parent)
    (images, _), sha = load_real(cfg, data_dir)
    images = images if cfg.n_real is None else images[: cfg.n_real]
    kwargs = extractor_kwargs(cfg, classifier_path)
    if features.exists():  # only this split's features under this extractor: nothing stale beside them
        shutil.rmtree(features)
    features.mkdir(parents=True)
    cache_real_features(images, kwargs, cfg, device, reference_cache_name(kwargs, sha, len(images)), features)
    reference = real_reference(images, cfg, classifier_path, device)
    if second is not None:
        kwargs = second_space.second_kwargs(second)
        cache_real_features(images, kwargs, cfg, device, reference_cache_name(kwargs, sha, len(images)), features)
        reference["second"] = second_reference(images, second, cfg, device)
    atomic_write_text(out.reference, json.dumps(reference, indent=2) + "\n")
    return reference


def second_checkpoint(cfg: EvaluateConfig, second_dir: Path | None) -> Path | None:
    """The second classifier's checkpoint, read once so that a missing or broken one stops the stage now; None when
    evaluate.second_extractor is off."""
    if not cfg.second_extractor:
        return None
    if second_dir is None:
        raise EvaluationError("evaluate.second_extractor: true needs the second classifier (--second-classifier, "
                              "e.g. models/second_classifier); allowed without it: false")
    path = paths.classifier_checkpoint(second_dir)
    second_space.load_second_classifier(path)
    return path


def check_features(cfg: EvaluateConfig, data_dir: Path, classifier_path: Path, features: Path,
                   second: Path | None = None) -> tuple:
    """The real split and its sha256, once the reference stage's cached features of it (under this extractor, and
    the second one if given, and subset) are found in `features`: an evaluate@ stage never extracts the real split."""
    real, sha = load_real(cfg, data_dir)
    n_real = len(real[0]) if cfg.n_real is None else min(cfg.n_real, len(real[0]))
    spaces = [extractor_kwargs(cfg, classifier_path)] + ([second_space.second_kwargs(second)] if second else [])
    for name in (reference_cache_name(kwargs, sha, n_real) for kwargs in spaces):
        if not cached_files(name, features):
            raise DataError(f"{features}: no cached features of the {cfg.real_split} split under this extractor "
                            f"({name}); run `dvc repro reference` first")
    return real, sha


def second_scores(fake: torch.Tensor, real: torch.Tensor, checkpoint: Path, cfg: EvaluateConfig, device: torch.device,
                  split_sha256: str, cache_root: Path | None = None) -> dict:
    """`fake` against `real` in the second space, by the evaluation's own torch-fidelity path (fidelity_metrics, the
    real side cached as the first space's is): second_fid, second_kid_mean, second_is_mean and, with
    evaluate.precision_recall, second_precision and second_recall."""
    kwargs = second_space.second_kwargs(checkpoint)
    cache_name = reference_cache_name(kwargs, split_sha256, len(real))
    m, _, _ = fidelity_metrics(fake, real, kwargs, cfg, device, cache_name, cache_root)
    return {f"{SECOND}{k}": m[k] for k in SECOND_SPACE if k in m}


def second_reference(real: torch.Tensor, checkpoint: Path, cfg: EvaluateConfig, device: torch.device) -> dict:
    """The second space's real-vs-real floor, as real_reference gives the first's: FID and KID between the
    two halves of the real split, IS of the first half."""
    half = len(real) // 2
    m, _, _ = fidelity_metrics(real[:half], real[half : 2 * half], second_space.second_kwargs(checkpoint),
                               replace(cfg, precision_recall=False), device)
    return {"extractor": second_space.EXTRACTOR_NAME, "fid_half_vs_half": m["fid"], "kid_half_vs_half": m["kid_mean"],
            "is_real": m["is_mean"], "test_accuracy": second_space.second_meta(checkpoint).get("test_accuracy")}
