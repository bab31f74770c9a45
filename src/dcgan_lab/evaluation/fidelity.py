"""torch-fidelity plumbing: uint8 samples in, FID/IS/KID/precision/recall out.

Generated images are made in large batches under inference mode and kept as uint8 in memory (no
PNG round trip). Features of the real split are cached by torch-fidelity under a name built from
the split's sha256, the subset size and the extractor weights' sha256, so a changed data set or
extractor never reuses stale statistics. torch-fidelity caches every real image's features (one file
per layer, in the split's order), not only their statistics: the per-class FID reads them by label
whether they were just extracted or come from the cache.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torch_fidelity
from torch_fidelity import metric_fid, metric_isc, metric_kid, metric_prc
from torch_fidelity import utils as tf_utils
from torch_fidelity.defaults import DEFAULTS as TF_DEFAULTS
from torch.utils.data import Dataset

from ..core import paths
from ..core.config import EvaluateConfig
from ..core.errors import EvaluationError
from ..core.files import sha256_file
from ..gan.models import Generator
from ..gan.sampling import generate, labels_in_proportion
from . import classifier

INCEPTION = "inception-v3-compat"
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
# How torch-fidelity computes precision/recall here, overall and class by class (per_class.py), so that the two
# are one computation: k = 3 nearest neighbours and distances in blocks of 10,000 (its defaults, spelled out),
# blockwise (save_cpu_ram, which also keeps DataLoader worker processes away from the in-memory tensors), quietly.
PRC_KWARGS = {"prc_neighborhood": TF_DEFAULTS["prc_neighborhood"], "prc_batch_size": TF_DEFAULTS["prc_batch_size"],
              "save_cpu_ram": True, "verbose": False}


class Uint8Images(Dataset):
    """A uint8 (N, C, S, S) tensor as a Dataset of (C, S, S) items; 3 channels when rgb (Inception)."""

    def __init__(self, images: torch.Tensor, rgb: bool = False):
        self.images, self.rgb = images, rgb

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        x = self.images[i]
        return x.expand(3, -1, -1) if self.rgb and x.shape[0] == 1 else x


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


def requested_labels(g, n: int, real_labels: torch.Tensor | None) -> torch.Tensor | None:
    """The (n,) labels a conditional G (spec.n_classes > 0) is asked for: the real split's class shares
    (gan.sampling.labels_in_proportion), so its overall FID compares like with like. None for an unconditional G."""
    n_classes = getattr(g.spec, "n_classes", 0)
    if not n_classes:
        return None
    if real_labels is None:
        raise EvaluationError(f"a conditional generator ({n_classes} classes) is scored against labelled real "
                              f"images, and no labels were given (QuickFID: real_labels)")
    if len(real_labels) and int(real_labels.max()) >= n_classes:
        raise EvaluationError(f"the real images have labels up to {int(real_labels.max())}, but the conditional "
                              f"generator knows {n_classes} classes (0 <= label < {n_classes}); was it trained "
                              f"on another data set?")
    return labels_in_proportion(n, torch.bincount(real_labels, minlength=n_classes))


def _calculate_metrics_args(fake: torch.Tensor, real: torch.Tensor, kwargs: dict, cfg: EvaluateConfig,
                            device: torch.device, real_cache_name: str | None, cache_root: Path | None) -> dict:
    """torch-fidelity's keyword arguments for FID, IS, KID (and precision/recall) of `fake` against `real`, the
    real side cached under `real_cache_name` (None: not cached); the KID subsets hold at most every image."""
    rgb = kwargs["feature_extractor"] == INCEPTION
    return dict(
        input1=Uint8Images(fake, rgb),
        input2=Uint8Images(real, rgb),
        fid=True,
        isc=True,
        kid=True,
        prc=cfg.precision_recall,
        isc_splits=cfg.is_splits,
        kid_subset_size=min(cfg.kid_subset_size, len(fake), len(real)),
        batch_size=cfg.batch_size,
        rng_seed=cfg.seed,
        cuda=device.type == "cuda",
        cache=real_cache_name is not None,
        cache_root=str(cache_root or paths.fidelity_cache_dir()),
        input2_cache_name=real_cache_name,
        **PRC_KWARGS,
        **kwargs,
    )


def fidelity_metrics(
    fake: torch.Tensor,  # (N, C, S, S) uint8
    real: torch.Tensor,  # (M, C, S, S) uint8
    kwargs: dict,
    cfg: EvaluateConfig,
    device: torch.device,
    real_cache_name: str | None = None,
    cache_root: Path | None = None,
) -> tuple[dict[str, float], dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """FID, IS, KID and precision/recall of `fake` against `real`, all by torch-fidelity, and the
    features torch-fidelity extracted from `fake` and from `real` ({layer: (N, D)} and {layer: (M, D)}
    on the CPU, row i from image i; e.g. the classifier's logits), the real ones from its cache if there.

    This is `torch_fidelity.calculate_metrics(input1=fake, input2=real, isc, fid, kid, prc)` taken
    step by step through torch-fidelity's own functions, in the order its
    `calculate_metrics_one_feature_extractor` calls them, so that the features come back: class
    coverage reads the classifier's logits from them instead of running the classifier again, and the
    per-class FID groups them by class.
    tests/evaluation/test_fidelity.py checks that every number equals calculate_metrics' exactly."""
    tf = _calculate_metrics_args(fake, real, kwargs, cfg, device, real_cache_name, cache_root)
    layers = {m: kwargs[f"feature_layer_{m}"] for m in ("isc", "fid", "kid", "prc") if tf[m]}
    extractor = tf_utils.create_feature_extractor(kwargs["feature_extractor"], sorted(set(layers.values())), **tf)
    features = [tf_utils.extract_featuresdict_from_input_id_cached(i, extractor, **tf) for i in (1, 2)]
    stats = [metric_fid.fid_featuresdict_to_statistics_cached(f, tf_utils.get_cacheable_input_name(i, **tf),
                                                              extractor, layers["fid"], **tf)
             for i, f in zip((1, 2), features)]
    result = {
        **metric_isc.isc_featuresdict_to_metric(features[0], layers["isc"], **tf),
        **metric_fid.fid_statistics_to_metric(*stats, False),
        **metric_kid.kid_featuresdict_to_metric(*features, layers["kid"], **tf),
    }
    out = {
        "fid": result[metric_fid.KEY_METRIC_FID],
        "is_mean": result[metric_isc.KEY_METRIC_ISC_MEAN],
        "is_std": result[metric_isc.KEY_METRIC_ISC_STD],
        "kid_mean": result[metric_kid.KEY_METRIC_KID_MEAN],
        "kid_std": result[metric_kid.KEY_METRIC_KID_STD],
    }
    if cfg.precision_recall:
        prc = metric_prc.prc_featuresdict_to_metric(*features, layers["prc"], **tf)
        out.update(precision=prc[metric_prc.KEY_METRIC_PRECISION], recall=prc[metric_prc.KEY_METRIC_RECALL])
    return {**{k: float(v) for k, v in out.items()}, "kid_subset_size": tf["kid_subset_size"]}, features[0], features[1]


def cache_real_features(real: torch.Tensor, kwargs: dict, cfg: EvaluateConfig, device: torch.device, cache_name: str,
                        cache_root: Path) -> list[Path]:
    """Extract the real split's features and their FID statistics into torch-fidelity's cache under `cache_name`,
    as fidelity_metrics would on its first call (same layers, same files), so that every later call only reads
    them. Returns the cached files."""
    tf = _calculate_metrics_args(real[:0], real, kwargs, cfg, device, cache_name, cache_root)
    layers = {m: kwargs[f"feature_layer_{m}"] for m in ("isc", "fid", "kid", "prc") if tf[m]}
    extractor = tf_utils.create_feature_extractor(kwargs["feature_extractor"], sorted(set(layers.values())), **tf)
    features = tf_utils.extract_featuresdict_from_input_id_cached(2, extractor, **tf)
    metric_fid.fid_featuresdict_to_statistics_cached(features, cache_name, extractor, layers["fid"], **tf)
    return cached_files(cache_name, cache_root)


def cached_files(cache_name: str, cache_root: Path) -> list[Path]:
    """The files torch-fidelity keeps under `cache_name`: the real split's features per layer, its FID statistics."""
    return sorted(Path(cache_root).glob(f"{cache_name}-*"))


class QuickFID:
    """FID of a few samples against a fixed held-out set, to pick the best generator during training.

    Same extractor as the evaluation; the real set's features are cached on the first call. A conditional
    G is asked for the real set's class shares, from `real_labels` (which it then needs)."""

    def __init__(self, real: torch.Tensor, split_sha256: str, cfg: EvaluateConfig, classifier_path: Path,
                 n_samples: int, device: torch.device, real_labels: torch.Tensor | None = None):
        self.real, self.cfg, self.n, self.device = real[:n_samples], cfg, n_samples, device
        self.real_labels = None if real_labels is None else real_labels[:n_samples]
        self.kwargs = extractor_kwargs(cfg, classifier_path)
        if self.kwargs["feature_extractor"] == classifier.EXTRACTOR_NAME:
            classifier.load_classifier(classifier_path)  # missing or broken: stop now, not at the first quick FID
        self.cache_name = reference_cache_name(self.kwargs, split_sha256, len(self.real))

    def __call__(self, g: Generator) -> float:
        labels = requested_labels(g, self.n, self.real_labels)
        fake = generate(g, self.n, self.cfg.seed, self.cfg.batch_size, self.device, labels=labels)
        rgb = self.kwargs["feature_extractor"] == INCEPTION
        result = torch_fidelity.calculate_metrics(
            input1=Uint8Images(fake, rgb), input2=Uint8Images(self.real, rgb), fid=True,
            batch_size=self.cfg.batch_size, cuda=self.device.type == "cuda", cache=True,
            cache_root=str(paths.fidelity_cache_dir()), input2_cache_name=self.cache_name,
            save_cpu_ram=True, verbose=False, **self.kwargs,
        )
        return float(result["frechet_inception_distance"])
