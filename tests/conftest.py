"""Shared fixtures: the real params.yaml, shrunk so the real code runs in seconds on a CPU."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
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


def run(cmd, cwd, env, check=True, timeout=900):
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def commit(dst: Path, env: dict, message: str) -> str:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    run(git + ["add", "-A"], dst, env)
    run(git + ["commit", "-qm", message], dst, env)
    return run(["git", "rev-parse", "HEAD"], dst, env).stdout.strip()


def repo_copy(dst: Path, raw_params: dict) -> dict:
    """This repository's files (as git sees them, without dvc.lock, metrics/ and benchmarks/) in a fresh
    git repo at `dst`, with `raw_params` as params.yaml. Returns the environment to run `dvc` and stages in."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        if (ROOT / f).is_file() and f != "dvc.lock" and not f.startswith(("metrics/", "benchmarks/")):
            (dst / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, dst / f)
    (dst / "params.yaml").write_text(yaml.safe_dump(raw_params, sort_keys=False))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for var in ("MLFLOW_TRACKING_URI", "DVC_EXP_NAME", "DVC_EXP_BASELINE_REV", "DVC_ROOT", "WORLD_SIZE"):
        env.pop(var, None)
    run(["git", "init", "-q"], dst, env)
    commit(dst, env, "copy")
    return env
