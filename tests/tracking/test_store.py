"""The MLflow store, for real: where it is, its fallback when a server does not answer, the project's experiment
in it, and batches within MLflow's limits on a real sqlite store (which refuses bigger ones)."""

from __future__ import annotations

from pathlib import Path

from dcgan_lab.tracking.store import (
    EXPERIMENT, EXPERIMENT_KIND, experiment_id, log_batch, open_client, project_root, sqlite_path, tracking_uri,
)
from helpers import closed_port


def test_project_root_sees_through_dvc_experiment_temp_dirs(tmp_path):
    assert project_root(tmp_path / ".dvc" / "tmp" / "exps" / "tmpab12cd") == tmp_path.resolve()
    assert project_root(tmp_path) == tmp_path.resolve()


def test_tracking_uri_is_absolute_and_env_wins(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri(tmp_path / ".dvc/tmp/exps/tmpx") == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/elsewhere.db")
    assert tracking_uri(tmp_path) == f"sqlite:///{tmp_path}/elsewhere.db"


def test_a_server_that_does_not_answer_gives_the_offline_store_with_one_warning(tmp_path, monkeypatch, capsys):
    down = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", down)
    offline = f"sqlite:///{tmp_path.resolve()}/mlflow-offline.db"
    assert tracking_uri(tmp_path) == tracking_uri(tmp_path) == offline
    assert capsys.readouterr().err == (f"warning: MLflow tracking server {down} is unreachable; logging to {offline} "
                                       f"instead. When it is back: python -m dcgan_lab.tracking.offline --to {down}\n")


def test_sqlite_path_is_the_database_file_of_a_sqlite_uri_and_none_for_other_stores():
    assert sqlite_path("sqlite:////work/repo/mlflow.db") == Path("/work/repo/mlflow.db")
    assert sqlite_path("sqlite:///mlflow.db?timeout=60") == Path("mlflow.db")
    assert sqlite_path("http://127.0.0.1:5000") is None
    assert sqlite_path("file:///work/repo/mlruns") is None


def test_the_experiment_is_created_once_with_its_kind_and_artifacts_beside_the_store(tmp_path):
    client = open_client(f"sqlite:///{tmp_path / 'mlflow.db'}")
    first = experiment_id(client, tmp_path / ".dvc/tmp/exps/tmpx")  # a DVC temp copy: the repository's artifacts
    assert experiment_id(client, tmp_path) == first
    exp = client.get_experiment(first)
    assert exp.name == EXPERIMENT and EXPERIMENT_KIND.items() <= exp.tags.items()
    assert exp.artifact_location == (tmp_path / "mlartifacts").resolve().as_uri()


def test_log_batch_splits_params_and_metrics_into_requests_mlflow_takes(tmp_path):
    from mlflow.entities import Metric, Param

    client = open_client(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_id = client.create_run(experiment_id(client, tmp_path)).info.run_id
    log_batch(client, run_id, params=[Param(f"p{i}", str(i)) for i in range(250)],
              metrics=[Metric("loss", float(s), 0, s) for s in range(2500)])
    assert len(client.get_run(run_id).data.params) == 250
    assert sorted(m.step for m in client.get_metric_history(run_id, "loss")) == list(range(2500))
