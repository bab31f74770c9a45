"""`dcgan-lab ui [--port 5000] [--host 127.0.0.1]`: the MLflow UI on the project's store, and the link that
opens it on the study's training runs.

MLflow 3.17's UI decides per browser whether an experiment is shown as a GenAI app (an overview of traces)
or as model training (its runs table): the sidebar's "GenAI / Model training" switch, kept in the browser,
GenAI until changed, or the `workflowType` of the address. The experiment's `mlflow.experimentKind` tag
(set by tracking/store.py) said it in earlier 3.x releases; 3.17 reads the address first. So this command
prints the experiment's address with `workflowType=machine_learning` and serves the store with `mlflow ui`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..core.errors import UserError

DESCRIPTION = __doc__.split("\n\n")[0]


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("ui", help="the MLflow UI on the project's runs (local store)", description=DESCRIPTION)
    p.add_argument("--port", type=int, default=5000, help="port (default: 5000)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.set_defaults(run=run)


def experiment_link(host: str, port: int, experiment_id: str) -> str:
    """The address that opens the experiment on its training runs in MLflow 3.17's UI."""
    return f"http://{host}:{port}/#/experiments/{experiment_id}?workflowType=machine_learning"


def run(args: argparse.Namespace) -> None:
    from ..tracking.store import EXPERIMENT, open_client, sqlite_path, tracking_uri

    uri = tracking_uri()
    db = sqlite_path(uri)
    if db is None:
        raise UserError(f"ui: serves a local store; MLFLOW_TRACKING_URI is {uri}: open that server's UI instead")
    if not db.exists():
        raise UserError(f"ui: no MLflow store at {db} yet; `make repro` (or any stage that logs) makes it")
    experiment = open_client(uri).get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        raise UserError(f"ui: {db} has no experiment {EXPERIMENT!r} yet; `make repro` logs into it")
    print(f"MLflow UI for {EXPERIMENT}, its training runs: {experiment_link(args.host, args.port, experiment.experiment_id)}",
          flush=True)
    mlflow = Path(sys.executable).parent / "mlflow"
    os.execv(str(mlflow), [str(mlflow), "ui", "--host", args.host, "--port", str(args.port),
                           "--backend-store-uri", uri])
