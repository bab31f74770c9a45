"""MLflow tracking server down: training logs locally with one warning; the runs are copied over later."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from dcgan_lab import tracking
from dcgan_lab.offline import sync_runs
from test_mlflow_server import server  # noqa: F401  (a real `mlflow server` subprocess)

pytestmark = pytest.mark.e2e


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket closes


def test_unreachable_server_falls_back_to_a_local_store_then_syncs(server, tmp_path, monkeypatch, capsys):  # noqa: F811
    from mlflow.tracking import MlflowClient

    down = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", down)
    logger = tracking.RunLogger.start("final", 0, {"train.lr_g": 2.0e-4}, root=tmp_path)
    logger.log_metrics([{"loss_d": 1.5, "loss_g": 0.7}, {"loss_d": 1.2, "loss_g": 0.9}], [1, 2])
    logger.log_image(np.zeros((8, 8, 3), dtype=np.uint8), "samples", 2)
    logger.finish()
    tracking.RunLogger.start("baseline", 0, {}, root=tmp_path).finish()
    err = capsys.readouterr().err
    assert err.count("is unreachable") == 1, "one warning per process"
    assert f"logging to sqlite:///{tmp_path / 'mlflow-offline.db'} instead" in err
    assert f"python -m dcgan_lab.offline --to {down}" in err

    offline = f"sqlite:///{tmp_path / 'mlflow-offline.db'}"
    assert len(sync_runs(offline, server)) == 2
    assert sync_runs(offline, server) == [], "a second sync copies nothing"
    client = MlflowClient(tracking_uri=server)
    exp = client.get_experiment_by_name("dcgan-lab")
    (run,) = client.search_runs([exp.experiment_id], filter_string="tags.variant = 'final'")
    assert run.data.params["train.lr_g"] == "0.0002" and run.info.status == "FINISHED"
    assert run.data.tags["mlflow.runName"] == "final-seed0" and run.data.tags["synced_from"].startswith(offline)
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "loss_d")] == [(1, 1.5), (2, 1.2)]
    assert any(a.path == "samples" for a in client.list_artifacts(run.info.run_id))
