"""MLflow: one experiment for the project, one run per variant per pipeline run.

The default store is a sqlite file at the repository root, named by absolute path,
so DVC experiment temp copies (<repo>/.dvc/tmp/exps/...) log into the same database.
MLFLOW_TRACKING_URI overrides it. Queued experiments (`dvc queue start -j N`) write to that
file from several processes at once: it is created under a file lock and switched to WAL,
and MLflow waits on a busy database (busy_timeout) rather than failing.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from contextlib import closing
from pathlib import Path

import numpy as np
from filelock import FileLock

from ..core import paths

EXPERIMENT = "dcgan-lab"


def project_root(cwd: Path | None = None) -> Path:
    """The repository root, seen through DVC's experiment temp copies."""
    cwd = Path(cwd or Path.cwd()).resolve()
    parts = cwd.parts
    for i in range(len(parts) - 2):
        if parts[i : i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i])
    return cwd


_unreachable: set[str] = set()


def tracking_uri(root: Path | None = None) -> str:
    """MLFLOW_TRACKING_URI, else <repo>/mlflow.db. A tracking server that does not answer is not worth
    losing a run over: training logs into <repo>/mlflow-offline.db and says how to copy it over later."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_root(root) / paths.MLFLOW_DB}"
    if uri.startswith(("http://", "https://")) and (uri in _unreachable or not server_up(uri)):
        offline = f"sqlite:///{project_root(root) / paths.OFFLINE_DB}"
        if uri not in _unreachable:
            _unreachable.add(uri)
            print(f"warning: MLflow tracking server {uri} is unreachable; logging to {offline} instead. "
                  f"When it is back: python -m dcgan_lab.tracking.offline --to {uri}", file=sys.stderr)
        return offline
    return uri


def server_up(uri: str, timeout: float = 5.0) -> bool:
    """Whether an MLflow tracking server answers its health check."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as response:
            return response.status == 200
    except (OSError, ValueError):
        return False


def open_client(uri: str):
    """An MlflowClient whose store exists. A new sqlite store is created by one process at a time
    (MLflow's schema set-up is not safe to race) and put in WAL mode, so readers never block writers."""
    from mlflow.tracking import MlflowClient

    if not uri.startswith("sqlite:///"):
        return MlflowClient(tracking_uri=uri)
    db = Path(uri.removeprefix("sqlite:///").split("?")[0])
    db.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{db}-lock", timeout=300):  # mlflow.db-lock: ignored with mlflow.db-* in .gitignore
        client = MlflowClient(tracking_uri=uri)  # creates (migrates) the tables if the file is new
        with closing(sqlite3.connect(db, timeout=60)) as conn:
            conn.execute("PRAGMA journal_mode=WAL")  # persists in the file
    return client


class RunLogger:
    """A thin handle on one MLflow run; batches metrics so logging stays off the hot path."""

    def __init__(self, run_id: str, uri: str):
        self.client = open_client(uri)
        self.run_id = run_id

    # -- creation

    @classmethod
    def start(cls, variant: str, seed: int | None, params: dict, tags: dict[str, str], root: Path | None = None,
              run_name: str | None = None) -> "RunLogger":
        """A new run in the project's experiment. `tags` are the stage's provenance (provenance.run_tags:
        torch/CUDA, device, data manifest hash, git commit, DVC experiment, params changed)."""
        uri = tracking_uri(root)
        client = open_client(uri)
        experiment_id = _experiment_id(client, uri, project_root(root))
        tags = {**tags, "variant": variant, "mlflow.runName": run_name or f"{variant}-seed{seed}"}
        if seed is not None:
            tags["seed"] = str(seed)
        run = client.create_run(experiment_id, tags=tags)
        logger = cls(run.info.run_id, uri)
        logger.log_params(params)
        return logger

    @classmethod
    def resume(cls, run_file: Path, variant: str, seed: int, tags: dict[str, str], root: Path | None = None
               ) -> "RunLogger":
        """The run that trained this checkpoint, or a new one if this tracking store does not have it."""
        uri = tracking_uri(root)
        try:
            run_id = json.loads(Path(run_file).read_text())["run_id"]
            logger = cls(run_id, uri)
            logger.client.get_run(run_id)
            return logger
        except Exception as exc:  # missing file, other store, deleted run: log into a fresh run instead
            print(f"warning: the MLflow run recorded in {run_file} is not in {uri} ({type(exc).__name__}); "
                  f"logging {variant} seed {seed} into a new run", file=sys.stderr)
            return cls.start(variant, seed, {}, tags, root)

    @classmethod
    def reopen(cls, run_id: str, variant: str, seed: int, tags: dict[str, str], root: Path | None = None
               ) -> "RunLogger":
        """Continue a run after a resume: mark it running again and log nothing at steps it already
        has (the resumed training recomputes the steps between its checkpoint and the interruption)."""
        uri = tracking_uri(root)
        try:
            logger = cls(run_id, uri)
            history = logger.client.get_metric_history(run_id, "loss_d")
        except Exception as exc:  # deleted run, or another store: log into a fresh run instead
            print(f"warning: the MLflow run {run_id} of this checkpoint is not in {uri} ({type(exc).__name__}); "
                  f"logging {variant} seed {seed} into a new run", file=sys.stderr)
            return cls.start(variant, seed, {}, tags, root)
        logger.client.update_run(run_id, status="RUNNING")
        logger.logged_through = max((m.step for m in history), default=-1)
        return logger

    logged_through = -1  # steps up to this one are in the run already (see reopen); -1: none, step 0 counts

    def save_run_file(self, path: Path) -> None:
        Path(path).write_text(json.dumps({"run_id": self.run_id, "tracking_uri": self.client.tracking_uri}) + "\n")

    # -- logging

    def log_params(self, params: dict) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=items[i : i + 100])

    def log_metrics(self, rows: list[dict[str, float]], steps: list[int]) -> None:
        """One batch for many steps: rows[i] holds the metrics of steps[i]."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, int(s)) for row, s in zip(rows, steps) for k, v in row.items()
                   if s > self.logged_through]
        for i in range(0, len(metrics), 1000):  # MLflow's per-batch limit
            self.client.log_batch(self.run_id, metrics=metrics[i : i + 1000])

    def log_image(self, image: np.ndarray, key: str, step: int) -> None:
        """A (H, W) or (H, W, 3) uint8 image as a step image (MLflow's image UI) and a PNG artifact."""
        if step <= self.logged_through:
            return
        self.client.log_image(self.run_id, image, key=key, step=step)
        self.client.log_image(self.run_id, image, artifact_file=f"{key}/step_{step:07d}.png")

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def set_tags(self, tags: dict) -> None:
        for k, v in tags.items():
            self.client.set_tag(self.run_id, k, str(v))

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status=status)

    def fail(self, reason: str) -> None:
        """Mark the run FAILED and say why (tag `failure_reason`, shown in the run's overview)."""
        self.client.set_tag(self.run_id, "failure_reason", reason[:5000])
        self.finish("FAILED")


def _experiment_id(client, uri: str, root: Path) -> str:
    exp = client.get_experiment_by_name(EXPERIMENT)
    if exp is not None:
        return exp.experiment_id
    # A tracking server keeps its own artifact store; a local database gets one beside it,
    # by absolute path, so runs from DVC temp copies do not scatter artifacts.
    location = (None if uri.startswith(("http:", "https:", "databricks"))
                else (root / paths.MLFLOW_ARTIFACTS).resolve().as_uri())
    try:
        return client.create_experiment(EXPERIMENT, artifact_location=location)
    except Exception:  # another process created it first
        return client.get_experiment_by_name(EXPERIMENT).experiment_id
