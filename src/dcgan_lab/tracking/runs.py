"""MLflow: one experiment for the project, one run per variant per pipeline run.

The default store is a sqlite file at the repository root, named by absolute path,
so DVC experiment temp copies (<repo>/.dvc/tmp/exps/...) log into the same database.
MLFLOW_TRACKING_URI overrides it. Queued experiments (`dvc queue start -j N`) write to that
file from several processes at once: it is created under a file lock and switched to WAL,
and MLflow waits on a busy database (busy_timeout) rather than failing.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import sys
import time
from contextlib import closing
from dataclasses import dataclass, field
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
    if uri.startswith(("http://", "https://")):
        # MLflow retries a failed request 7 times over about 4 minutes by default: a server that went away
        # would hold training that long per call. A few seconds, then the offline store (RunLogger._do);
        # the user's own settings win.
        for name, value in (("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2"), ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1"),
                            ("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")):
            os.environ.setdefault(name, value)
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


def quiet_mlflow() -> None:
    """MLflow's INFO chatter ("Creating initial MLflow database tables...") stays out of the stages' output;
    its warnings still show. MLFLOW_LOGGING_LEVEL, when a user sets it, decides instead."""
    if "MLFLOW_LOGGING_LEVEL" not in os.environ:
        logging.getLogger("mlflow").setLevel(logging.WARNING)


def open_client(uri: str):
    """An MlflowClient whose store exists. A new sqlite store is created by one process at a time
    (MLflow's schema set-up is not safe to race) and put in WAL mode, so readers never block writers."""
    from mlflow.tracking import MlflowClient

    quiet_mlflow()
    if not uri.startswith("sqlite:///"):
        return MlflowClient(tracking_uri=uri)
    db = Path(uri.removeprefix("sqlite:///").split("?")[0])
    db.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{db}-lock", timeout=300):  # mlflow.db-lock: ignored with mlflow.db-* in .gitignore
        client = MlflowClient(tracking_uri=uri)  # creates (migrates) the tables if the file is new
        with closing(sqlite3.connect(db, timeout=60)) as conn:
            conn.execute("PRAGMA journal_mode=WAL")  # persists in the file
    return client


@dataclass
class Record:
    """Everything one RunLogger has logged, so that the run can be carried on in another store, whole,
    if its tracking server goes away mid-run (offline.continue_offline)."""

    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: list = field(default_factory=list)  # mlflow.entities.Metric
    images: list[tuple[np.ndarray, str, int]] = field(default_factory=list)  # (image, key, step)
    artifacts: list[tuple[str, str | None]] = field(default_factory=list)  # (local path, artifact path)


class RunLogger:
    """A thin handle on one MLflow run; batches metrics so logging stays off the hot path. When its
    tracking server stops answering mid-run, the run goes on in the offline store (one warning), with
    everything this handle had logged; `python -m dcgan_lab.tracking.offline` brings it back later."""

    def __init__(self, run_id: str, uri: str, root: Path | None = None):
        self.client = open_client(uri)
        self.run_id, self.uri, self.root = run_id, uri, root
        self.record = Record()

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
        logger = cls(run.info.run_id, uri, root)
        logger.record.tags.update({k: str(v) for k, v in tags.items()})
        logger.log_params(params)
        return logger

    @classmethod
    def _existing(cls, run_id: str, uri: str, root: Path | None) -> "RunLogger":
        """A handle on a run the store has (raises if it has not), knowing its tags and params."""
        logger = cls(run_id, uri, root)
        data = logger.client.get_run(run_id).data
        logger.record.tags.update(data.tags)
        logger.record.params.update(data.params)
        return logger

    @classmethod
    def resume(cls, run_file: Path, variant: str, seed: int, tags: dict[str, str], root: Path | None = None
               ) -> "RunLogger":
        """The run that trained this checkpoint, or a new one if this tracking store does not have it."""
        uri = tracking_uri(root)
        try:
            return cls._existing(json.loads(Path(run_file).read_text())["run_id"], uri, root)
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
            logger = cls._existing(run_id, uri, root)
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

    def _do(self, action) -> None:
        """Call `action(client, run_id)`; if it fails because the tracking server went away, carry the run on
        in the offline store and call it there."""
        try:
            action(self.client, self.run_id)
        except Exception as exc:
            if not self.uri.startswith(("http://", "https://")) or server_up(self.uri, timeout=3):
                raise
            from .offline import continue_offline  # offline.py builds on this module

            self.client, self.run_id, self.uri = continue_offline(self, exc)
            action(self.client, self.run_id)

    # -- logging

    def log_params(self, params: dict) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)) for k, v in params.items()]
        self.record.params.update({p.key: p.value for p in items})
        for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            self._do(lambda client, run_id, batch=items[i : i + 100]: client.log_batch(run_id, params=batch))

    def log_metrics(self, rows: list[dict[str, float]], steps: list[int]) -> None:
        """One batch for many steps: rows[i] holds the metrics of steps[i]."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, int(s)) for row, s in zip(rows, steps) for k, v in row.items()
                   if s > self.logged_through]
        self.record.metrics += metrics
        for i in range(0, len(metrics), 1000):  # MLflow's per-batch limit
            self._do(lambda client, run_id, batch=metrics[i : i + 1000]: client.log_batch(run_id, metrics=batch))

    def log_image(self, image: np.ndarray, key: str, step: int) -> None:
        """A (H, W) or (H, W, 3) uint8 image as a step image (MLflow's image UI) and a PNG artifact."""
        if step <= self.logged_through:
            return
        self.record.images.append((image, key, step))
        self._do(lambda client, run_id: log_step_image(client, run_id, image, key, step))

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self.record.artifacts.append((str(path), artifact_path))
        self._do(lambda client, run_id: client.log_artifact(run_id, str(path), artifact_path))

    def set_tags(self, tags: dict) -> None:
        tags = {k: str(v) for k, v in tags.items()}
        self.record.tags.update(tags)
        for k, v in tags.items():
            self._do(lambda client, run_id, k=k, v=v: client.set_tag(run_id, k, v))

    def finish(self, status: str = "FINISHED") -> None:
        self._do(lambda client, run_id: client.set_terminated(run_id, status=status))

    def fail(self, reason: str) -> None:
        """Mark the run FAILED and say why (tag `failure_reason`, shown in the run's overview)."""
        self.set_tags({"failure_reason": reason[:5000]})
        self.finish("FAILED")


def log_step_image(client, run_id: str, image: np.ndarray, key: str, step: int) -> None:
    client.log_image(run_id, image, key=key, step=step)
    client.log_image(run_id, image, artifact_file=f"{key}/step_{step:07d}.png")


# MLflow 3 opens an experiment on its GenAI overview unless the experiment says what it is: this tag, MLflow's
# own setting (the UI's "experiment type"), makes it open on the training runs.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def _experiment_id(client, uri: str, root: Path) -> str:
    exp = client.get_experiment_by_name(EXPERIMENT)
    if exp is None:
        # A tracking server keeps its own artifact store; a local database gets one beside it,
        # by absolute path, so runs from DVC temp copies do not scatter artifacts.
        location = (None if uri.startswith(("http:", "https:", "databricks"))
                    else (root / paths.MLFLOW_ARTIFACTS).resolve().as_uri())
        try:
            return client.create_experiment(EXPERIMENT, artifact_location=location, tags=EXPERIMENT_KIND)
        except Exception:  # another process created it first
            exp = client.get_experiment_by_name(EXPERIMENT)
    if any(exp.tags.get(k) != v for k, v in EXPERIMENT_KIND.items()):  # a store from before the tag
        for k, v in EXPERIMENT_KIND.items():
            client.set_experiment_tag(exp.experiment_id, k, v)
    return exp.experiment_id
