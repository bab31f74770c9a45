"""MLflow tracking server down: training logs locally with one warning; the runs are copied over later."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from dcgan_lab.tracking import runs
from dcgan_lab.tracking.offline import sync_runs
from helpers import closed_port, empty_mlflow_server

pytestmark = pytest.mark.e2e


def test_unreachable_server_falls_back_to_a_local_store_then_syncs(mlflow_server, tmp_path, monkeypatch, capsys):
    from mlflow.tracking import MlflowClient

    server = mlflow_server
    empty_mlflow_server(server)  # the session's server: only this test's runs in it
    down = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", down)
    logger = runs.RunLogger.start("final", 0, {"train.lr_g": 2.0e-4}, {}, root=tmp_path)
    logger.log_metrics([{"loss_d": 1.5, "loss_g": 0.7}, {"loss_d": 1.2, "loss_g": 0.9}], [1, 2])
    logger.log_image(np.zeros((8, 8, 3), dtype=np.uint8), "samples", 2)
    logger.finish()
    runs.RunLogger.start("baseline", 0, {}, {}, root=tmp_path).finish()
    err = capsys.readouterr().err
    assert err.count("is unreachable") == 1, "one warning per process"
    assert f"logging to sqlite:///{tmp_path / 'mlflow-offline.db'} instead" in err
    assert f"python -m dcgan_lab.tracking.offline --to {down}" in err

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

    # The command the warning names runs as printed, and finds nothing left to copy.
    result = subprocess.run([sys.executable, "-m", "dcgan_lab.tracking.offline", "--to", server, "--from", offline],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and f"copied 0 run(s) from {offline} to {server}" in result.stderr
