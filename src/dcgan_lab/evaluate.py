"""FID and IS of each variant's generator, computed by torch-fidelity.

Samples go from the generator straight into torch-fidelity (no PNG round trip):
the generator is wrapped to emit uint8 images, which is what torch-fidelity's
feature extractors take. Real images come from a held-out split of the prepared data.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import torch
import torch_fidelity
from torch import nn
from torch.utils.data import Dataset
from torch_fidelity.generative_model_modulewrapper import GenerativeModelModuleWrapper

from . import classifier
from .checkpoint import load_generator
from .config import EvaluateConfig
from .errors import EvaluationError
from .models import Generator
from .train import resolve_device, to_uint8

INCEPTION = "inception-v3-compat"
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"


class Uint8Generator(nn.Module):
    """G(z) as uint8 images; grayscale repeated to 3 channels when the extractor needs RGB (Inception)."""

    def __init__(self, g: Generator, rgb: bool):
        super().__init__()
        self.g, self.rgb = g, rgb
        self.pixel_range = (-1.0, 1.0) if g.spec.output == "tanh" else (0.0, 1.0)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        images = to_uint8(self.g(z), self.pixel_range)  # (B, C, S, S)
        return images.expand(-1, 3, -1, -1) if self.rgb and images.shape[1] == 1 else images


class Uint8Images(Dataset):
    """A uint8 (N, C, S, S) tensor as a Dataset of (C, S, S) items (3 channels when rgb)."""

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
    """torch-fidelity arguments that choose the feature extractor and its layers."""
    if cfg.feature_extractor == "inception":
        return {
            "feature_extractor": INCEPTION,
            "feature_extractor_weights_path": str(inception_weights(cfg)),
            "feature_layer_fid": "2048",
            "feature_layer_isc": "logits_unbiased",
        }
    return {
        "feature_extractor": classifier.register(),
        "feature_extractor_weights_path": str(classifier_path),
        "feature_layer_fid": "features",
        "feature_layer_isc": "logits",
    }


def score_generator(
    g: Generator,
    real: torch.Tensor,  # (N, C, S, S) uint8
    cfg: EvaluateConfig,
    classifier_path: Path,
    device: torch.device,
) -> dict:
    """FID (generated vs real) and IS (generated) with torch-fidelity, plus the protocol that produced them."""
    kwargs = extractor_kwargs(cfg, classifier_path)
    rgb = cfg.feature_extractor == "inception"
    if cfg.n_real is not None:
        real = real[: cfg.n_real]
    model = GenerativeModelModuleWrapper(Uint8Generator(g, rgb), g.spec.latent_dim, "normal", 0)
    with torch.inference_mode():
        result = torch_fidelity.calculate_metrics(
            input1=model,
            input1_model_num_samples=cfg.n_samples,
            input2=Uint8Images(real, rgb),
            fid=True,
            isc=True,
            isc_splits=cfg.is_splits,
            batch_size=cfg.batch_size,
            rng_seed=cfg.seed,
            cuda=device.type == "cuda",
            cache=False,
            save_cpu_ram=True,  # no DataLoader worker processes for in-memory tensors
            verbose=False,
            **kwargs,
        )
    return {
        "fid": float(result["frechet_inception_distance"]),
        "is_mean": float(result["inception_score_mean"]),
        "is_std": float(result["inception_score_std"]),
        "extractor": kwargs["feature_extractor"],
        "fid_features": kwargs["feature_layer_fid"],
        "n_samples": cfg.n_samples,
        "n_real": len(real),
        "real_split": cfg.real_split,
        "seed": cfg.seed,
    }


def evaluate_variants(
    cfg: EvaluateConfig,
    device_name: str,
    variants: list[str],
    models_dir: Path,
    real: torch.Tensor,
    classifier_path: Path,
) -> dict[str, dict]:
    device = resolve_device(device_name)
    results = {}
    for name in variants:
        g = load_generator(Path(models_dir) / name / "checkpoint.pt").to(device)
        results[name] = score_generator(g, real, cfg, classifier_path, device)
    return results


def write_results(results: dict[str, dict], json_path: Path, csv_path: Path) -> None:
    Path(json_path).parent.mkdir(parents=True, exist_ok=True)
    Path(json_path).write_text(json.dumps(results, indent=2) + "\n")
    table = pd.DataFrame.from_dict(results, orient="index").rename_axis("variant").reset_index()
    table.to_csv(csv_path, index=False, float_format="%.6g")


def log_results(results: dict[str, dict], models_dir: Path, extractor_accuracy: float | None) -> None:
    """FID/IS into the MLflow run that trained each variant (same metric names across variants)."""
    from .tracking import RunLogger

    for name, r in results.items():
        logger = RunLogger.resume(Path(models_dir) / name / "mlflow_run.json", name)
        logger.log_metrics([{k: r[k] for k in ("fid", "is_mean", "is_std")}], [0])
        tags = {f"eval.{k}": r[k] for k in ("extractor", "fid_features", "n_samples", "n_real", "real_split", "seed")}
        if extractor_accuracy is not None and r["extractor"] == classifier.EXTRACTOR_NAME:
            tags["eval.extractor_test_accuracy"] = extractor_accuracy
        logger.set_tags(tags)
