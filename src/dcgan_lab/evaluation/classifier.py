"""A small domain classifier, and its registration as a torch-fidelity feature extractor.

Offline there are no Inception weights, so FID/KID are computed in this classifier's
penultimate feature space and IS from its logits. Every report names the extractor.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

from ..core.config import ClassifierConfig
from ..core.errors import CheckpointError, UserError, reason
from ..core.files import atomic_torch_save, load_torch
from ..core.progress import Progress

EXTRACTOR_NAME = "dcgan-lab-classifier"


@dataclass(frozen=True)
class ClassifierSpec:
    channels: int
    width: int
    n_classes: int
    image_size: int


class Classifier(nn.Module):
    """Three stride-2 conv blocks, global average pooling, one linear layer.

    (B, C, S, S) uint8 or float in [0, 1] -> features (B, 4w), logits (B, n_classes)
    """

    def __init__(self, spec: ClassifierSpec):
        super().__init__()
        self.spec = spec
        w = spec.width

        def block(c_in, c_out, stride):
            return [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]

        self.body = nn.Sequential(
            *block(spec.channels, w, 1),  # (B, w, S, S)
            *block(w, 2 * w, 2),  # (B, 2w, S/2, S/2)
            *block(2 * w, 2 * w, 1),
            *block(2 * w, 4 * w, 2),  # (B, 4w, S/4, S/4)
            *block(4 * w, 4 * w, 2),  # (B, 4w, S/8, S/8)
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),  # (B, 4w)
        )
        self.head = nn.Linear(4 * w, spec.n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            x = x.float() / 255.0
        return self.body((x - 0.5) / 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def train_classifier(
    cfg: ClassifierConfig,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    n_classes: int,
    device: torch.device,
) -> tuple[Classifier, dict]:
    """Adam + cross-entropy on uint8 images; returns the model and its metrics (test accuracy)."""
    torch.manual_seed(cfg.seed)
    x, y = train[0].to(device), train[1].to(device)
    spec = ClassifierSpec(channels=x.shape[1], width=cfg.width, n_classes=n_classes, image_size=x.shape[-1])
    model = Classifier(spec).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    steps_per_epoch = len(x) // cfg.batch_size
    total = steps_per_epoch * cfg.epochs if cfg.max_steps is None else min(cfg.max_steps, steps_per_epoch * cfg.epochs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(total, 1))
    order_gen = torch.Generator().manual_seed(cfg.seed + 1)
    started, step = time.perf_counter(), 0
    model.train()
    progress = Progress(total, "train_classifier", images_per_unit=cfg.batch_size)
    while step < total:
        order = torch.randperm(len(x), generator=order_gen).to(device)
        for i in range(min(steps_per_epoch, total - step)):
            idx = order[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            progress.update()  # no host sync: the loss is not read
    progress.close()
    seconds = time.perf_counter() - started
    model.eval()
    accuracy = accuracy_on(model, *test, device=device)
    return model.cpu(), {
        "test_accuracy": round(accuracy, 5),
        "steps": step,
        "train_seconds": round(seconds, 2),
        "n_train": len(x),
        "n_test": len(test[0]),
        "min_accuracy": cfg.min_accuracy,
    }


@torch.inference_mode()
def accuracy_on(model: Classifier, images: torch.Tensor, labels: torch.Tensor, device="cpu", batch: int = 1000) -> float:
    model.eval().to(device)
    correct = 0
    for i in range(0, len(images), batch):
        logits = model(images[i : i + batch].to(device))
        correct += (logits.argmax(1).cpu() == labels[i : i + batch]).sum().item()
    return correct / max(1, len(images))


def check_accuracy(metrics: dict, min_accuracy: float) -> None:
    """A weak classifier makes FID in its feature space meaningless: stop below `classifier.min_accuracy`."""
    if metrics["test_accuracy"] < min_accuracy:
        raise UserError(
            f"classifier.min_accuracy: test accuracy {metrics['test_accuracy']:.4f} is below {min_accuracy}; "
            "FID in its feature space would mean little. Train longer (classifier.epochs) or lower the bar "
            "for quick runs"
        )


def save_classifier(model: Classifier, path: Path, **meta) -> None:
    """The weights, the spec that rebuilds the model, and `meta` (its metrics: test accuracy, ...)."""
    atomic_torch_save({"spec": asdict(model.spec), "state_dict": model.state_dict(), "meta": meta}, path)


def _load(path: Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: classifier checkpoint not found; run `dvc repro train_classifier` first")
    return load_torch(path, CheckpointError, "dcgan-lab classifier checkpoint", "rerun `dvc repro train_classifier`")


def load_classifier(path: Path) -> Classifier:
    blob = _load(path)
    try:
        model = Classifier(ClassifierSpec(**blob["spec"]))
        model.load_state_dict(blob["state_dict"])
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable dcgan-lab classifier checkpoint ({reason(exc)}); "
                              "rerun `dvc repro train_classifier`") from exc
    return model.eval()


def classifier_meta(path: Path) -> dict:
    """What save_classifier stored beside the weights: test accuracy, steps, sizes."""
    return _load(path).get("meta", {})


class ClassifierFeatureExtractor(FeatureExtractorBase):
    """torch-fidelity extractor: uint8 (B, C, S, S) -> ('features' (B, 4w), 'logits' (B, classes))."""

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__(name, features_list)
        if feature_extractor_weights_path is None:
            raise CheckpointError(f"{EXTRACTOR_NAME}: feature_extractor_weights_path (classifier checkpoint) is required")
        self.model = load_classifier(Path(feature_extractor_weights_path))
        self.requires_grad_(False)

    @staticmethod
    def get_provided_features_list():
        return "features", "logits"

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return {"isc": "logits", "fid": "features", "kid": "features", "prc": "features"}[metric]

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        raise NotImplementedError

    def forward(self, x: torch.Tensor):
        if x.dtype != torch.uint8:
            raise TypeError(f"{EXTRACTOR_NAME} expects uint8 images, got {x.dtype}")
        features = self.model.features(x)
        out = {"features": features, "logits": self.model.head(features)}
        return tuple(out[name] for name in self.features_list)


def register() -> str:
    """Register the extractor with torch-fidelity once per process; returns its name."""
    if EXTRACTOR_NAME not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor(EXTRACTOR_NAME, ClassifierFeatureExtractor)
    return EXTRACTOR_NAME
