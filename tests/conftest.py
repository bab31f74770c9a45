"""Shared fixtures: the real params.yaml, shrunk so the real code runs in seconds on a CPU."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from dcgan_lab.config import Params, parse_params

ROOT = Path(__file__).resolve().parents[1]


def shrink(raw: dict) -> dict:
    """The user's params with tiny widths, few steps and few samples; everything else untouched."""
    raw = copy.deepcopy(raw)
    raw["data"]["train_limit"] = 1024
    raw["model"].update(latent_dim=16, g_width=8, d_width=8)
    raw["train"].update(batch_size=32, max_steps=12, log_every=5, sample_grid=16, device="cpu", eval_every=5,
                        eval_samples=100)
    raw["classifier"].update(width=8, max_steps=40, min_accuracy=0.2)
    raw["evaluate"].update(n_samples=200, n_real=300, batch_size=100, is_splits=2)
    return raw


@pytest.fixture(scope="session")
def raw_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.fixture
def params(raw_params) -> Params:
    return parse_params(shrink(raw_params))
