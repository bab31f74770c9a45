"""Is a feature space a FID space? The held-out split made worse by each disturbance (disturb.py), level by level,
scored against the real split the evaluation scores against, through the evaluation's own torch-fidelity path
(fidelity.fidelity_metrics, the reference's features cached once per run), and checked (checks.py): FID rises with
every disturbance, recall falls where modes go missing, the features do not depend on the batch size.

validate_extractor takes an extractor's torch-fidelity arguments and its name, so a second feature space is
validated by the same code and lands beside the first in metrics/extractor.json (keyed by extractor).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import replace
from pathlib import Path

import torch
from torch_fidelity import utils as tf_utils
from torch_fidelity.defaults import DEFAULTS as TF_DEFAULTS

from ..core import paths
from ..core.config import EvaluateConfig, Params
from ..core.device import resolve_device
from ..core.errors import EvaluationError
from ..core.files import atomic_write_bytes, atomic_write_text, ensure_writable
from ..core.progress import Progress
from ..data.splits import load_split, read_manifest
from ..evaluation import classifier, second_space
from ..evaluation.fidelity import (INCEPTION, Uint8Images, cache_real_features, extractor_kwargs, fidelity_metrics,
                                   reference_cache_name)
from ..evaluation.process import keep_freed_memory
from ..evaluation.reference import second_checkpoint
from . import checks, figure
from .disturb import Disturbance, disturbances, one_thread

# The protocol's sizes, fixed in code for the reason disturb.py's levels are (and recorded in the JSON's protocol).
# N_IMAGES: the held-out images disturbed. Every level is one torch-fidelity call, most of whose cost does not
# shrink with n (precision/recall's neighbour distances among the reference's own images, KID's 100 subsets); half
# of MNIST's 10,000 val images keep the stage's 30 calls near 3 minutes on 2 cores with a floor FID as low as all
# of them give (benchmarks/RESULTS.md).
N_IMAGES = 5000
BATCH_CHECK_IMAGES = 256  # held-out images extracted at batch size 1 and at evaluate.batch_size
# fp32 sums reordered by another batch size (another kernel blocking) move a feature by a few eps (1.2e-7) of its
# size per layer; an extractor that depends on its batch (batch norm in train mode) moves it by its own size.
BATCH_TOLERANCE = 1e-5  # of the largest feature (at least 1)
SENSITIVITY = "median over disturbances of FID at level 1 (the mildest) over FID at level 0 (the floor)"


def score(images: torch.Tensor, reference: torch.Tensor, kwargs: dict, cfg: EvaluateConfig, device: torch.device,
          cache_name: str, cache_root: Path) -> dict[str, float]:
    """FID, KID (mean), precision and recall of `images` against the cached `reference`, as fidelity_metrics
    returns them."""
    m, _, _ = fidelity_metrics(images, reference, kwargs, cfg, device, cache_name, cache_root)
    return {"fid": m["fid"], "kid": m["kid_mean"], "precision": m["precision"], "recall": m["recall"]}


def score_levels(d: Disturbance, images: torch.Tensor, labels: torch.Tensor, floor: dict, score_fn, seed: int,
                 progress: Progress) -> dict:
    """One disturbance's scores at every level (level 0: the floor's scores, unless every level is a subset), with
    FID over its level 0 and the Spearman rho of FID and recall over the levels."""
    rows, n = [], len(images)
    for i, level in enumerate(d.levels):
        if i == 0 and not d.subset:
            rows.append(floor)
            continue
        disturbed = d.apply(images, labels, level, seed)
        n = len(disturbed) if i == 0 else n
        rows.append(score_fn(disturbed))
        progress.update(now=f"{d.name} {level:g}")
    out = {"parameter": d.parameter, "levels": list(d.levels), "n": n,
           **{key: [row[key] for row in rows] for key in ("fid", "kid", "precision", "recall")}}
    out.update(fid_over_floor=checks.over_floor(out["fid"]), spearman_fid=checks.spearman(out["fid"]),
               spearman_recall=checks.spearman(out["recall"]))
    return out


def batch_size_check(images: torch.Tensor, kwargs: dict, batch_size: int, device: torch.device) -> dict:
    """The extractor's FID-layer features of `images`, as torch-fidelity extracts them, at batch size 1 and at
    `batch_size` (at most len(images)): equal within BATCH_TOLERANCE (checks.features_agree)? Both on one CPU
    thread, so that the batch size is all that differs (and batch size 1 takes seconds, not minutes, on busy cores)."""
    layer, cuda = kwargs["feature_layer_fid"], device.type == "cuda"
    extractor = tf_utils.create_feature_extractor(kwargs["feature_extractor"], [layer], cuda=cuda, verbose=False,
                                                  **kwargs)
    data = Uint8Images(images, rgb=kwargs["feature_extractor"] == INCEPTION)
    sizes = [1, min(batch_size, len(images))]
    with one_thread():
        one, many = (tf_utils.get_featuresdict_from_dataset(data, extractor, b, cuda, True, False)[layer]
                     for b in sizes)
    return {**checks.features_agree(one, many, BATCH_TOLERANCE), "n_images": len(images), "batch_sizes": sizes}


def validate_extractor(name: str, kwargs: dict, held_out: tuple[torch.Tensor, torch.Tensor], reference: torch.Tensor,
                       reference_sha256: str, cfg: EvaluateConfig, device: torch.device) -> dict:
    """The validation of one feature space (`kwargs`: its torch-fidelity arguments, as fidelity.extractor_kwargs
    gives them; `name`: how the JSON and the warnings call it): every disturbance's scores at every level of the
    `held_out` images (uint8 (N, C, S, S), labels (N,)) against `reference`, the checks, the sensitivity, and the
    verdict (`ok`, the failed checks, one warning line each). Precision/recall are computed whatever
    evaluate.precision_recall says: the recall check needs them."""
    cfg = replace(cfg, precision_recall=True)
    images, labels = held_out
    table = disturbances(len(images), len(labels.unique()))
    progress = Progress(1 + sum(len(d.levels) - 1 + d.subset for d in table), f"validate_extractor {name}",
                        unit="level")
    with tempfile.TemporaryDirectory(prefix="dcgan-lab-validate-") as tmp:  # this run's cache of the reference
        cache_name, cache_root = reference_cache_name(kwargs, reference_sha256, len(reference)), Path(tmp)
        cache_real_features(reference, kwargs, cfg, device, cache_name, cache_root)

        def score_fn(x: torch.Tensor) -> dict[str, float]:
            return score(x, reference, kwargs, cfg, device, cache_name, cache_root)

        floor = score_fn(images)
        progress.update(now="undisturbed")
        scored = {d.name: score_levels(d, images, labels, floor, score_fn, cfg.seed, progress) for d in table}
    progress.close()
    checked = checks.checks(scored, batch_size_check(images[:BATCH_CHECK_IMAGES], kwargs, cfg.batch_size, device))
    failed, warnings = checks.verdict(name, checked)
    return {"floor_fid": floor["fid"], "n": len(images), "disturbances": scored, "checks": checked,
            "sensitivity": checks.sensitivity({n: d["fid_over_floor"] for n, d in scored.items()}),
            "ok": not failed, "failed_checks": failed, "warnings": warnings}


def held_out_split(manifest: dict, real_split: str) -> str:
    """The split to disturb: held out from the classifier's training (train) and not the one scored against (so
    that level 0 is a real-vs-real floor): val, or test where evaluate.real_split is val."""
    for split in ("val", "test"):
        if split in manifest["splits"] and split != real_split:
            return split
    raise EvaluationError(f"evaluate.real_split: {real_split!r}; validate_extractor needs a second held-out split to "
                          f"disturb, and {manifest['dataset']} has only {', '.join(manifest['splits'])}")


def load_inputs(cfg: EvaluateConfig, data_dir: Path) -> tuple[str, tuple, torch.Tensor, str]:
    """The held-out split's name and its first N_IMAGES images with labels (no more than the reference has: a
    quick run's small evaluate.n_real makes this stage quick too), and the real split the evaluation scores against
    (evaluate.real_split, its first evaluate.n_real images) with its sha256."""
    manifest = read_manifest(data_dir)
    if cfg.real_split not in manifest["splits"]:
        raise EvaluationError(f"evaluate.real_split: {manifest['dataset']} has no {cfg.real_split!r} split; allowed "
                              f"here: {', '.join(s for s in manifest['splits'] if s != 'train')}")
    split = held_out_split(manifest, cfg.real_split)
    images, labels = load_split(data_dir, split)
    reference, _ = load_split(data_dir, cfg.real_split)
    reference = reference if cfg.n_real is None else reference[: cfg.n_real]
    n = min(N_IMAGES, len(reference))
    return split, (images[:n], labels[:n]), reference, manifest["splits"][cfg.real_split]["sha256"]


def protocol(cfg: EvaluateConfig, split: str, n: int, n_reference: int, table: tuple[Disturbance, ...]) -> dict:
    """How metrics/extractor.json was measured: the splits and sizes, the seed, every disturbance's levels."""
    return {
        "split": split, "n": n, "reference_split": cfg.real_split, "n_reference": n_reference, "seed": cfg.seed,
        "batch_size": cfg.batch_size, "kid_subset_size": min(cfg.kid_subset_size, n, n_reference),
        "prc_neighborhood": TF_DEFAULTS["prc_neighborhood"],
        "disturbances": {d.name: {"parameter": d.parameter, "levels": list(d.levels)} for d in table},
        "batch_size_check": {"n_images": min(BATCH_CHECK_IMAGES, n), "rel_tolerance": BATCH_TOLERANCE},
        "checks": {checks.FID_RISES: "Spearman rho of FID over the levels = 1, every disturbance",
                   checks.RECALL_FALLS: f"Spearman rho of recall over the levels = -1 under "
                                        f"{', '.join(checks.RECALL_DISTURBANCES)} (ties at recall 0 count as falling)",
                   checks.BATCH_SIZE: "max |features at batch size 1 - at evaluate.batch_size| <= tolerance"},
        "sensitivity": SENSITIVITY,
    }


def validate_extractor_stage(params: Params, data_dir: Path, classifier_dir: Path, metrics: Path,
                             plots: Path, second_dir: Path | None = None) -> dict:
    """The validate_extractor stage: the evaluation's extractor validated (validate_extractor), and with
    evaluate.second_extractor the second one (`second_dir`) beside it, written to `metrics` (JSON, keyed by
    extractor, the evaluation's first) and `plots` (PNG), both only once everything is measured. Freed memory stays
    in the process (evaluation/process.py)."""
    keep_freed_memory()
    cfg, device = params.evaluate, resolve_device(params.train.device)
    classifier_path = paths.classifier_checkpoint(classifier_dir)
    classifier.load_classifier(classifier_path)  # missing or broken: one line now, not after minutes
    second = second_checkpoint(cfg, second_dir)  # the same
    spaces = [extractor_kwargs(cfg, classifier_path)] + ([second_space.second_kwargs(second)] if second else [])
    ensure_writable(metrics.parent, plots.parent)
    split, held_out, reference, sha = load_inputs(cfg, data_dir)
    result = {"extractors": {kwargs["feature_extractor"]: validate_extractor(kwargs["feature_extractor"], kwargs,
                                                                             held_out, reference, sha, cfg, device)
                             for kwargs in spaces},
              "protocol": protocol(cfg, split, len(held_out[0]), len(reference),
                                   disturbances(len(held_out[0]), len(held_out[1].unique())))}
    png = figure.render(result)
    atomic_write_text(metrics, json.dumps(result, indent=2, allow_nan=False) + "\n")
    atomic_write_bytes(plots, png)
    return result
