"""Every path the pipeline reads or writes, derived from the few roots that dvc.yaml passes on each
stage's command line (`--data data/prepared --models models ...`). Nothing else in the package
spells a path; tests/test_dvc_yaml.py checks that dvc.yaml's outs are the paths derived here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PARAMS_FILE = "params.yaml"  # DVC's own default params file
# The MLflow store at the repository root when MLFLOW_TRACKING_URI is not set (see tracking/runs.py),
# the store runs fall back to when a tracking server is unreachable, and the local artifact root.
MLFLOW_DB = "mlflow.db"
OFFLINE_DB = "mlflow-offline.db"
MLFLOW_ARTIFACTS = "mlartifacts"


def cache_dir() -> Path:
    """Downloads and feature caches shared by every checkout and DVC experiment temp dir (each entry is
    named by a checksum of what it holds, so sharing them is safe)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dcgan-lab"


def fidelity_cache_dir() -> Path:
    """torch-fidelity's cache of real-split features (named by data, subset and extractor checksums)."""
    return cache_dir() / "fidelity"


# --------------------------------------------------------------------------- prepare


def split_file(data_dir: Path, split: str) -> Path:
    return Path(data_dir) / f"{split}.pt"


def manifest_file(data_dir: Path) -> Path:
    return Path(data_dir) / "manifest.json"


# --------------------------------------------------------------------------- train_classifier


def classifier_checkpoint(classifier_dir: Path) -> Path:
    return Path(classifier_dir) / "classifier.pt"


# --------------------------------------------------------------------------- train@<variant>-<seed>


@dataclass(frozen=True)
class ModelDir:
    """models/<variant>/seed<k>/: what one training run leaves for evaluate and report (a DVC output)."""

    path: Path

    @property
    def checkpoint(self) -> Path:  # G, D and the EMA generator of the last step
        return self.path / "checkpoint.pt"

    @property
    def best(self) -> Path:  # the generator with the lowest quick FID during training
        return self.path / "best.pt"

    @property
    def samples(self) -> Path:  # fixed-noise sample grid
        return self.path / "samples.png"

    @property
    def mlflow_run(self) -> Path:  # the MLflow run that trained it
        return self.path / "mlflow_run.json"

    @property
    def description(self) -> Path:  # the run description (training/spec.py), as the MLflow run's run.json
        return self.path / "run.json"

    @property
    def architecture(self) -> Path:  # torchinfo summaries and layered figures of G and D
        return self.path / "architecture"


def model_dir(models: Path, variant: str, seed: int) -> ModelDir:
    return ModelDir(Path(models) / variant / f"seed{seed}")


@dataclass(frozen=True)
class RunPaths:
    """Everything the train stage writes for one (variant, seed)."""

    model: ModelDir
    train_metrics: Path  # summary of the training run (DVC metric, in git)
    losses: Path  # per-step table (DVC plot, in git)
    state: Path  # resumable checkpoint (DVC output with persist: true, so a rerun can resume)


def train_metrics_file(train_metrics: Path, variant: str, seed: int) -> Path:
    return Path(train_metrics) / variant / f"seed{seed}.json"


def losses_file(train_metrics: Path, variant: str, seed: int) -> Path:
    return Path(train_metrics) / variant / f"seed{seed}_losses.csv"


def run_paths(variant: str, seed: int, models: Path, checkpoints: Path, train_metrics: Path) -> RunPaths:
    return RunPaths(
        model=model_dir(models, variant, seed),
        train_metrics=train_metrics_file(train_metrics, variant, seed),
        losses=losses_file(train_metrics, variant, seed),
        state=Path(checkpoints) / variant / f"seed{seed}" / "state.pt",
    )


# --------------------------------------------------------------------------- evaluate and report


@dataclass(frozen=True)
class EvalPaths:
    metrics: Path  # the metrics directory

    @property
    def results(self) -> Path:  # every run's scores (DVC metric)
        return self.metrics / "eval.json"

    @property
    def table(self) -> Path:  # the same, one row per run
        return self.metrics / "eval.csv"

    @property
    def reference(self) -> Path:  # real data scored the same way (the reference stage)
        return self.metrics / "reference.json"

    @property
    def runs(self) -> Path:  # one file per run, each written by its evaluate@<variant>-<seed> stage
        return self.metrics / "eval"

    def run(self, variant: str, seed: int | str) -> Path:
        return self.runs / variant / f"seed{seed}.json"


@dataclass(frozen=True)
class ReportPaths:
    metrics: Path
    plots: Path

    @property
    def markdown(self) -> Path:
        return self.metrics / "ablation.md"

    @property
    def table(self) -> Path:
        return self.metrics / "ablation.csv"

    @property
    def summary(self) -> Path:  # DVC metric: per-variant means, intervals and the verdicts
        return self.metrics / "ablation.json"

    @property
    def figures(self) -> dict[str, Path]:
        return {name: self.plots / f"{name}.png" for name in ("fid", "losses", "samples")}
