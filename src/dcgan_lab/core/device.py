"""The torch device a stage runs on, from `train.device`."""

from __future__ import annotations

import torch

from .errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """`auto`: CUDA when torch sees a GPU, else the CPU; `cuda` without a GPU is a config error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: 'cuda' was asked for but torch sees no CUDA device; use auto or cpu")
    return torch.device(name)
