"""Shared fixtures: the real params.yaml (shrunk so the real code runs in seconds on a CPU), noise images,
real MNIST with a small digit classifier for the evaluation tests, and a real `mlflow server`."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
import torch

from dcgan_lab.core.config import Params
from dcgan_lab.core.params import parse_params
from helpers import build_prefix, free_port, random_images, raw_params_file, shrink, start_mlflow_server, trained_model_dir


@pytest.fixture(scope="session")
def raw_params() -> dict:
    return raw_params_file()


@pytest.fixture
def params(raw_params) -> Params:
    return parse_params(shrink(raw_params))


@pytest.fixture(scope="session")
def model_dir(raw_params, tmp_path_factory) -> Path:
    """models/final/seed0 as the train stage writes it, from a few real steps at tiny widths (helpers.
    trained_model_dir); shared by the tests of the `dcgan-lab` command, which only read it."""
    return trained_model_dir(tmp_path_factory.mktemp("models") / "final" / "seed0", parse_params(shrink(raw_params)))


@pytest.fixture(scope="session")
def prefix_repo(tmp_path_factory) -> Path:
    """The stages before training (helpers.PREFIX_STAGES), run once by `dvc repro` in a repository copy with
    shrink()'s params; the e2e modules that start at training copy its results (repo_copy's `prefix`). The
    pipeline test alone runs every stage from nothing."""
    return build_prefix(tmp_path_factory.mktemp("prefix"))


@pytest.fixture
def images() -> torch.Tensor:
    """512 noise images, (1, 32, 32) uint8: 16 steps per epoch at the shrunk batch size."""
    return random_images(512)


@pytest.fixture(scope="session")
def mnist(tmp_path_factory):
    """Real MNIST (train limited to 10,000 images, test 10,000) at 32 px, as (train, test) splits."""
    from dcgan_lab.core.config import DataConfig
    from dcgan_lab.data.prepare import prepare
    from dcgan_lab.data.splits import load_split

    out = tmp_path_factory.mktemp("mnist") / "prepared"
    prepare(DataConfig(dataset="mnist", image_size=32, train_limit=10000), out)
    return load_split(out, "train"), load_split(out, "test")


@pytest.fixture(scope="session")
def classifier_path(mnist, tmp_path_factory) -> Path:
    """A small, confident digit classifier, saved as the train_classifier stage saves it (metrics as meta)."""
    from dcgan_lab.core.config import ClassifierConfig
    from dcgan_lab.evaluation.classifier import save_classifier, train_classifier

    train, test = mnist
    model, metrics = train_classifier(ClassifierConfig(width=16, epochs=3, batch_size=64), train,
                                      (test[0][:2000], test[1][:2000]), 10, torch.device("cpu"))
    assert metrics["test_accuracy"] > 0.95, metrics  # a small, confident digit classifier
    path = tmp_path_factory.mktemp("clf") / "classifier.pt"
    save_classifier(model, path, **metrics)
    return path


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` (sqlite backend, local artifact store, 127.0.0.1 on a free port) as a subprocess,
    one for the whole session; its URL. Tests that read it back start with helpers.empty_mlflow_server."""
    port = free_port()
    proc = start_mlflow_server(tmp_path_factory.mktemp("mlflow-server"), port)
    yield f"http://127.0.0.1:{port}"
    os.killpg(proc.pid, signal.SIGTERM)  # the server, its uvicorn workers and job consumers
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # job consumers that outlive the server
    except ProcessLookupError:
        pass
    proc.wait(timeout=15)
