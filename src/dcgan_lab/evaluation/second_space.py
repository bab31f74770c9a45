"""The second, independent feature space (evaluate.second_extractor): a digit classifier that shares neither
architecture nor training with the first (classifier.py), registered with torch-fidelity as the first is.

Where the first is five 3x3 conv + batch norm blocks, global average pooling and 64-d features, trained with Adam and
a one-cycle schedule, this one is LeNet's family (LeCun et al. 1998): two 5x5 conv + max-pool blocks without
normalisation and a fully connected layer whose `second_classifier.features` (256) ReLU activations are the FID
features, trained with SGD, Nesterov momentum, weight decay, dropout and a cosine schedule, its own seed, batch size
and data order. Stein et al. (2023) show that conclusions can change with the feature space; every primary verdict
is re-decided here (reporting/robustness.py), as a check, never as a second decision.
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

from ..core.config import SecondClassifierConfig
from ..core.errors import CheckpointError, UserError, reason
from ..core.files import atomic_torch_save, load_torch
from ..core.progress import Progress
from .classifier import ClassifierFeatureExtractor, accuracy_on

EXTRACTOR_NAME = "dcgan-lab-lenet"
STAGE = "train_second_classifier"


@dataclass(frozen=True)
class LeNetSpec:
    channels: int  # of the images
    width: int  # of the first conv (second_classifier.channels)
    features: int
    n_classes: int
    image_size: int
    dropout: float


class LeNet(nn.Module):
    """(B, C, S, S) uint8 or float in [0, 1] -> features (B, features), logits (B, n_classes)."""

    def __init__(self, spec: LeNetSpec):
        super().__init__()
        self.spec, w = spec, spec.width
        self.body = nn.Sequential(
            nn.Conv2d(spec.channels, w, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),  # (B, w, S/2, S/2)
            nn.Conv2d(w, 2 * w, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),  # (B, 2w, S/4, S/4)
            nn.Flatten(),
            nn.Linear(2 * w * (spec.image_size // 4) ** 2, spec.features), nn.ReLU(inplace=True),  # the features
        )
        self.head = nn.Sequential(nn.Dropout(spec.dropout), nn.Linear(spec.features, spec.n_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            x = x.float() / 255.0
        return self.body(x - 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def train_second_classifier(cfg: SecondClassifierConfig, train: tuple[torch.Tensor, torch.Tensor],
                            test: tuple[torch.Tensor, torch.Tensor], n_classes: int,
                            device: torch.device) -> tuple[LeNet, dict]:
    """SGD (Nesterov momentum, weight decay, cosine schedule) + cross-entropy on uint8 images; returns the model and
    its metrics (test accuracy), as classifier.train_classifier does."""
    torch.manual_seed(cfg.seed)
    x, y = train[0].to(device), train[1].to(device)
    spec = LeNetSpec(channels=x.shape[1], width=cfg.channels, features=cfg.features, n_classes=n_classes,
                     image_size=x.shape[-1], dropout=cfg.dropout)
    model = LeNet(spec).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0,
                          weight_decay=cfg.weight_decay)
    steps_per_epoch = len(x) // cfg.batch_size
    total = steps_per_epoch * cfg.epochs if cfg.max_steps is None else min(cfg.max_steps, steps_per_epoch * cfg.epochs)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(total, 1))
    order_gen = torch.Generator().manual_seed(cfg.seed + 1)
    started, step = time.perf_counter(), 0
    model.train()
    progress = Progress(total, STAGE, images_per_unit=cfg.batch_size)
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
            progress.update()
    progress.close()
    seconds = time.perf_counter() - started
    model.eval()
    return model.cpu(), {
        "test_accuracy": round(accuracy_on(model, *test, device=device), 5),
        "steps": step,
        "train_seconds": round(seconds, 2),
        "n_train": len(x),
        "n_test": len(test[0]),
        "min_accuracy": cfg.min_accuracy,
        "extractor": EXTRACTOR_NAME,
        "feature_dim": cfg.features,
    }


def check_second_accuracy(metrics: dict, min_accuracy: float) -> None:
    """classifier.check_accuracy's rule, under this section's keys: stop below `second_classifier.min_accuracy`."""
    if metrics["test_accuracy"] < min_accuracy:
        raise UserError(
            f"second_classifier.min_accuracy: test accuracy {metrics['test_accuracy']:.4f} is below {min_accuracy}; "
            "FID in its feature space would mean little. Train longer (second_classifier.epochs) or lower the bar "
            "for quick runs"
        )


def save_second_classifier(model: LeNet, path: Path, **meta) -> None:
    atomic_torch_save({"family": "lenet", "spec": asdict(model.spec), "state_dict": model.state_dict(), "meta": meta},
                      path)


def load_second_classifier(path: Path) -> LeNet:
    """The model from its checkpoint; a missing or unreadable one is a CheckpointError naming the file and the fix."""
    path = Path(path)
    fix = f"rerun `dvc repro {STAGE}`"
    if not path.exists():
        raise CheckpointError(f"{path}: second classifier checkpoint not found; run `dvc repro {STAGE}` first, or "
                              "set evaluate.second_extractor: false")
    blob = load_torch(path, CheckpointError, "dcgan-lab second classifier checkpoint", fix)
    try:
        if blob.get("family") != "lenet":
            raise ValueError(f"family {blob.get('family')!r}, not 'lenet'")
        model = LeNet(LeNetSpec(**blob["spec"]))
        model.load_state_dict(blob["state_dict"])
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable dcgan-lab second classifier checkpoint ({reason(exc)}); "
                              f"{fix}") from exc
    return model.eval()


def second_meta(path: Path) -> dict:
    return load_torch(Path(path), CheckpointError, "dcgan-lab second classifier checkpoint",
                      f"rerun `dvc repro {STAGE}`").get("meta", {})


class LeNetFeatureExtractor(ClassifierFeatureExtractor):
    """torch-fidelity extractor: uint8 (B, C, S, S) -> ('features' (B, features), 'logits' (B, classes)); the first
    extractor's layers, metrics and forward, this model."""

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        FeatureExtractorBase.__init__(self, name, features_list)  # not the first's: it would load the first model
        if feature_extractor_weights_path is None:
            raise CheckpointError(f"{EXTRACTOR_NAME}: feature_extractor_weights_path (checkpoint) is required")
        self.model = load_second_classifier(Path(feature_extractor_weights_path))
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor):
        if x.dtype != torch.uint8:
            raise TypeError(f"{EXTRACTOR_NAME} expects uint8 images, got {x.dtype}")
        return super().forward(x)


def register() -> str:
    """Register the extractor with torch-fidelity once per process; returns its name."""
    if EXTRACTOR_NAME not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor(EXTRACTOR_NAME, LeNetFeatureExtractor)
    return EXTRACTOR_NAME


def second_kwargs(checkpoint: Path) -> dict:
    """torch-fidelity arguments that choose the second extractor, as fidelity.extractor_kwargs does the first."""
    return {
        "feature_extractor": register(),
        "feature_extractor_weights_path": str(checkpoint),
        "feature_layer_fid": "features",
        "feature_layer_kid": "features",
        "feature_layer_prc": "features",
        "feature_layer_isc": "logits",
    }

