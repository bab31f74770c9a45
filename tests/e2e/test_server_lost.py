"""The MLflow server dies in the middle of training, for real: a `mlflow server` subprocess killed while the
train stage logs into it. Training finishes; every step's metrics are in the local fallback store; the real
`python -m dcgan_lab.tracking.offline --to <uri>` brings them to the restarted server exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import free_port, keep_variants, raw_params_file, repo_copy, run, shrink, start_mlflow_server

pytestmark = pytest.mark.e2e
TOTAL = 160  # 1024 images / batch 32 = 32 steps per epoch, 5 epochs
TRAIN = ["stages/train.py", "--variant", "baseline", "--seed", "0", "--data", "data/prepared", "--classifier",
         "models/classifier", "--models", "models", "--checkpoints", "checkpoints", "--metrics", "metrics/train"]


def kill_server(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the server, its workers and job consumers, with no goodbye
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def test_training_outlives_its_tracking_server_and_the_sync_brings_every_step_back_once(tmp_path, prefix_repo):
    from mlflow.tracking import MlflowClient

    raw = keep_variants(shrink(raw_params_file()), ["baseline"])
    raw["train"].update(max_steps=None, epochs=5, checkpoint_every=40, eval_every=40, log_every=4)
    dst = tmp_path / "repo"
    dst.mkdir()
    env = repo_copy(dst, raw, prefix_repo)
    run(["dvc", "repro", "prepare", "train_classifier"], dst, env)
    store, port = tmp_path / "server", free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_mlflow_server(store, port)
    try:
        train = subprocess.Popen([sys.executable, *TRAIN], cwd=dst, env={**env, "MLFLOW_TRACKING_URI": url},
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        client = MlflowClient(tracking_uri=url)
        deadline = time.monotonic() + 300
        while True:  # until the run has logged its first steps to the server
            runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
            if runs and client.get_metric_history(runs[0].info.run_id, "loss_d"):
                break
            assert train.poll() is None and time.monotonic() < deadline, train.communicate()
            time.sleep(0.2)
        server_run = runs[0].info.run_id
        kill_server(server)
        out, err = train.communicate(timeout=600)
    finally:
        kill_server(server)
    assert train.returncode == 0, err
    assert "baseline seed 0: 160 steps" in out and "Traceback" not in err
    (warning,) = [line for line in err.splitlines() if "went away" in line]
    assert warning.startswith(f"warning: MLflow tracking server {url} went away") and (
        f"python -m dcgan_lab.tracking.offline --to {url}" in warning)

    # Every step is in the local fallback, in one run that says which server run it continues.
    offline = MlflowClient(tracking_uri=f"sqlite:///{dst / 'mlflow-offline.db'}")
    (carried,) = offline.search_runs([offline.get_experiment_by_name("dcgan-lab").experiment_id])
    assert carried.data.tags["continues_run"] == f"{url}#{server_run}" and carried.info.status == "FINISHED"
    for key in ("loss_d", "loss_g", "d_real", "d_fake"):
        assert sorted(m.step for m in offline.get_metric_history(carried.info.run_id, key)) == list(range(1, TOTAL + 1))
    assert carried.data.params["train.epochs"] == "5"

    # The server comes back (same store); the real sync command appends what the server's run lacks.
    server = start_mlflow_server(store, port)
    try:
        sync = run([sys.executable, "-m", "dcgan_lab.tracking.offline", "--to", url], dst, env)
        assert sync.stderr.strip().splitlines()[-1] == f"copied 1 run(s) from sqlite:///{dst / 'mlflow-offline.db'} to {url}"
        back = client.get_run(server_run)
        assert back.info.status == "FINISHED"
        assert len(client.search_runs([back.info.experiment_id])) == 1, "appended to the run, not copied beside it"
        for key in ("loss_d", "loss_g", "d_real", "d_fake"):
            steps = [m.step for m in client.get_metric_history(server_run, key)]
            assert sorted(steps) == list(range(1, TOTAL + 1)), f"{key}: every step exactly once"
        assert {"fid_quick", "images_per_sec"} <= set(back.data.metrics)
        assert any(a.path == "checkpoint" for a in client.list_artifacts(server_run))
        again = run([sys.executable, "-m", "dcgan_lab.tracking.offline", "--to", url], dst, env)
        assert "copied 0 run(s)" in again.stderr
        assert sorted(m.step for m in client.get_metric_history(server_run, "loss_d")) == list(range(1, TOTAL + 1))
    finally:
        kill_server(server)
