"""Checkpoints that rebuild their models alone: weights plus the specs that made them."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from ..core.errors import CheckpointError, reason
from ..core.files import atomic_torch_save, load_torch
from .models import Discriminator, DiscriminatorSpec, Generator, GeneratorSpec


def save_gan(path: Path, generator: Generator, discriminator: Discriminator, ema: Generator | None = None,
             **meta) -> None:
    """G, D and (if kept) the EMA generator, each with the spec that rebuilds it."""
    blob = {
        "generator": {"spec": asdict(generator.spec), "state_dict": generator.state_dict()},
        "discriminator": {"spec": asdict(discriminator.spec), "state_dict": discriminator.state_dict()},
        "meta": meta,
    }
    if ema is not None:
        blob["generator_ema"] = {"spec": asdict(ema.spec), "state_dict": ema.state_dict()}
    atomic_torch_save(blob, path)


def save_generator(path: Path, generator: Generator, **meta) -> None:
    """A generator alone (e.g. the best one by FID during training); load_generator reads it."""
    atomic_torch_save({"generator": {"spec": asdict(generator.spec), "state_dict": generator.state_dict()},
                       "meta": meta}, path)


def _load(path: Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    blob = load_torch(path, CheckpointError, "checkpoint", "rerun the train stage that wrote it (`dvc repro`)")
    if not isinstance(blob, dict):  # e.g. torch.save of a bare tensor
        raise CheckpointError(f"{path}: not a dcgan-lab GAN checkpoint (it holds a {type(blob).__name__}, "
                              f"not the dict of specs and weights save_gan writes)")
    return blob


def _rebuild(path: Path, key: str, model_cls, spec_cls):
    blob = _load(path)
    try:
        model = model_cls(spec_cls(**blob[key]["spec"]))
        model.load_state_dict(blob[key]["state_dict"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path}: not a dcgan-lab GAN checkpoint, or one made by an incompatible version ({reason(exc)})"
        ) from exc
    return model.eval()


def load_generator(path: Path, ema: bool = False) -> Generator:
    """The raw generator, or with `ema` its exponential moving average (train.ema_decay > 0)."""
    return _rebuild(path, "generator_ema" if ema else "generator", Generator, GeneratorSpec)


def has_ema(path: Path) -> bool:
    return "generator_ema" in _load(path)


def has_discriminator(path: Path) -> bool:
    """checkpoint.pt holds D; best.pt (save_generator) holds a generator alone."""
    return "discriminator" in _load(path)


def load_discriminator(path: Path) -> Discriminator:
    return _rebuild(path, "discriminator", Discriminator, DiscriminatorSpec)


def load_meta(path: Path) -> dict:
    return _load(path).get("meta", {})
