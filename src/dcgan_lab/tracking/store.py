"""The MLflow store every stage logs into: where it is, a client on it, the project's experiment in it.

The default store is a sqlite file at the repository root, named by absolute path,
so DVC experiment temp copies (<repo>/.dvc/tmp/exps/...) log into the same database.
MLFLOW_TRACKING_URI overrides it. Queued experiments (`dvc queue start -j N`) write to that
file from several processes at once: it is created under a file lock and switched to WAL,
and MLflow waits on a busy database (busy_timeout) rather than failing.
A tracking server that does not answer is not worth losing a run over: the stage logs into the offline
store, `<repo>/mlflow-offline.db`, and `python -m dcgan_lab.tracking.offline` copies it over later.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import sys
import urllib.request
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path

from filelock import FileLock

from ..core import paths

EXPERIMENT = "dcgan-lab"
# MLflow 3 opens an experiment on its GenAI overview unless the experiment says what it is: this tag, MLflow's
# own setting (the UI's "experiment type"), makes it open on the training runs.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
HTTP = ("http://", "https://")
MAX_PARAMS, MAX_METRICS = 100, 1000  # MLflow's limits per log_batch request


def project_root(cwd: Path | None = None) -> Path:
    """The repository root, seen through DVC's experiment temp copies."""
    cwd = Path(cwd or Path.cwd()).resolve()
    parts = cwd.parts
    for i in range(len(parts) - 2):
        if parts[i : i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i])
    return cwd


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` store URI (any ?query dropped); None for every other store."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///").split("?")[0])


def offline_uri(root: Path | None = None) -> str:
    """The store a stage logs into while its tracking server does not answer."""
    return f"sqlite:///{project_root(root) / paths.OFFLINE_DB}"


_unreachable: set[str] = set()  # servers this process gave up on: one warning each, no second health check


def mark_unreachable(uri: str) -> None:
    """From now on, tracking_uri() gives the offline store instead of the server at `uri`."""
    _unreachable.add(uri)


def tracking_uri(root: Path | None = None) -> str:
    """MLFLOW_TRACKING_URI, else <repo>/mlflow.db; the offline store (one warning) if it is a server that
    does not answer."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_root(root) / paths.MLFLOW_DB}"
    if not uri.startswith(HTTP):
        return uri
    # MLflow retries a failed request 7 times over about 4 minutes by default: a server that went away
    # would hold training that long per call. A few seconds, then the offline store
    # (RunLogger._call_with_failover); the user's own settings win.
    for name, value in (("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2"), ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1"),
                        ("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")):
        os.environ.setdefault(name, value)
    if uri not in _unreachable and server_up(uri):
        return uri
    offline = offline_uri(root)
    if uri not in _unreachable:
        mark_unreachable(uri)
        print(f"warning: MLflow tracking server {uri} is unreachable; logging to {offline} instead. "
              f"When it is back: python -m dcgan_lab.tracking.offline --to {uri}", file=sys.stderr)
    return offline


def server_up(uri: str, timeout: float = 5.0) -> bool:
    """Whether an MLflow tracking server answers its health check."""
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
    db = sqlite_path(uri)
    if db is None:
        return MlflowClient(tracking_uri=uri)
    db.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{db}-lock", timeout=300):  # mlflow.db-lock: ignored with mlflow.db-* in .gitignore
        client = MlflowClient(tracking_uri=uri)  # creates (migrates) the tables if the file is new
        with closing(sqlite3.connect(db, timeout=60)) as conn:
            conn.execute("PRAGMA journal_mode=WAL")  # persists in the file
    return client


def experiment_id(client, root: Path | None = None) -> str:
    """The id of the project's experiment in the client's store, created (with EXPERIMENT_KIND) if new."""
    exp = client.get_experiment_by_name(EXPERIMENT)
    if exp is not None:
        return exp.experiment_id
    # A tracking server keeps its own artifact store; a local database gets one beside it,
    # by absolute path, so runs from DVC temp copies do not scatter artifacts.
    location = (None if client.tracking_uri.startswith(("http:", "https:", "databricks"))
                else (project_root(root) / paths.MLFLOW_ARTIFACTS).resolve().as_uri())
    try:
        return client.create_experiment(EXPERIMENT, artifact_location=location, tags=EXPERIMENT_KIND)
    except Exception:  # another process created it first
        return client.get_experiment_by_name(EXPERIMENT).experiment_id


def log_batch(client, run_id: str, params: Sequence = (), metrics: Sequence = ()) -> None:
    """Log mlflow.entities Params and Metrics into the run, in as many requests as MLflow's limits take."""
    for i in range(0, len(params), MAX_PARAMS):
        client.log_batch(run_id, params=params[i : i + MAX_PARAMS])
    for i in range(0, len(metrics), MAX_METRICS):
        client.log_batch(run_id, metrics=metrics[i : i + MAX_METRICS])
