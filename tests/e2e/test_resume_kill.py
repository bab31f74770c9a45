"""Preemption, for real: `kill -9` a `dvc repro` mid-training, rerun it, and get the same weights bitwise
as an uninterrupted run, in the same single MLflow run."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml

from helpers import keep_variants, raw_params_file, repo_copy, run, shrink

pytestmark = pytest.mark.e2e
STAGE = "train@baseline-0"
TOTAL = 96  # 1024 images / batch 32 = 32 steps per epoch, 3 epochs


@pytest.fixture(scope="module")
def repo(tmp_path_factory, prefix_repo):
    raw = keep_variants(shrink(raw_params_file()), ["baseline"])
    raw["train"].update(max_steps=None, epochs=3, checkpoint_every=8, eval_every=20, log_every=4)
    dst = tmp_path_factory.mktemp("kill")
    env = repo_copy(dst, raw, prefix_repo)
    # The uninterrupted reference, logged to its own MLflow store.
    run(["dvc", "repro", STAGE], dst, {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{dst / 'reference.db'}"})
    reference = torch.load(dst / "models/baseline/seed0/checkpoint.pt", weights_only=True)
    best = torch.load(dst / "models/baseline/seed0/best.pt", weights_only=True)
    for out in ("models/baseline", "checkpoints/baseline"):
        subprocess.run(["rm", "-rf", str(dst / out)], check=True)
    return dst, env, reference, best


def kill_mid_training(dst: Path, env: dict, rng: random.Random) -> int:
    """Start `dvc repro`, SIGKILL its whole process group at a random moment after the first checkpoint;
    returns the step of the last checkpoint written."""
    sidecar = dst / "checkpoints/baseline/seed0/state.json"
    proc = subprocess.Popen(["dvc", "repro", STAGE], cwd=dst, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not sidecar.exists():
        assert proc.poll() is None, "dvc repro ended before the first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.02)
    time.sleep(rng.uniform(0, 0.3))  # a random step after it
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return json.loads(sidecar.read_text())["step"]


def test_sigkill_then_repro_resumes_to_bitwise_equal_weights_in_one_mlflow_run(repo):
    from mlflow.tracking import MlflowClient

    dst, env, reference, reference_best = repo
    rng = random.Random(os.getpid())
    step = kill_mid_training(dst, env, rng)
    assert 8 <= step < TOTAL and step % 8 == 0
    assert not (dst / "models/baseline/seed0/checkpoint.pt").exists(), "killed before the end"

    resumed = run(["dvc", "repro", STAGE], dst, env)
    assert f"baseline seed 0: resuming from step {step} " in resumed.stderr

    final = torch.load(dst / "models/baseline/seed0/checkpoint.pt", weights_only=True)
    for key in ("generator", "discriminator", "generator_ema"):
        ref, got = reference[key]["state_dict"], final[key]["state_dict"]
        assert ref.keys() == got.keys()
        assert all(torch.equal(ref[k], got[k]) for k in ref), f"{key} differs from the uninterrupted run"
    best = torch.load(dst / "models/baseline/seed0/best.pt", weights_only=True)
    assert best["meta"]["steps"] == reference_best["meta"]["steps"]
    assert all(torch.equal(best["generator"]["state_dict"][k], v)
               for k, v in reference_best["generator"]["state_dict"].items())

    client = MlflowClient(tracking_uri=f"sqlite:///{dst / 'mlflow.db'}")
    exp = client.get_experiment_by_name("dcgan-lab")
    (mlflow_run,) = client.search_runs([exp.experiment_id])  # one run, not one per attempt
    assert mlflow_run.info.status == "FINISHED"
    for name in ("loss_d", "d_real"):
        steps = [m.step for m in client.get_metric_history(mlflow_run.info.run_id, name)]
        assert sorted(steps) == list(range(1, TOTAL + 1)), f"{name}: every step once"
    ref_client = MlflowClient(tracking_uri=f"sqlite:///{dst / 'reference.db'}")
    (ref_run,) = ref_client.search_runs([ref_client.get_experiment_by_name("dcgan-lab").experiment_id])
    for name in ("loss_d", "loss_g"):
        ref_values = {m.step: m.value for m in ref_client.get_metric_history(ref_run.info.run_id, name)}
        values = {m.step: m.value for m in client.get_metric_history(mlflow_run.info.run_id, name)}
        assert values == ref_values

    # The state is a DVC output with persist: true, and the pipeline is up to date afterwards.
    assert "persist" in json.dumps(yaml.safe_load((dst / "dvc.yaml").read_text())["stages"]["train"]["outs"])
    assert "up to date" in run(["dvc", "status", STAGE], dst, env).stdout


def test_changed_config_starts_fresh_and_says_so(repo):
    dst, env, _, _ = repo
    assert (dst / "checkpoints/baseline/seed0/state.pt").exists()
    raw = yaml.safe_load((dst / "params.yaml").read_text())
    raw["train"]["lr_g"] = 1.0e-4
    (dst / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    result = run(["dvc", "repro", STAGE], dst, env)
    assert "was written by another config, seed, data set or code version: starting fresh" in result.stderr
    assert "resuming" not in result.stderr
    assert json.loads((dst / "metrics/train/baseline/seed0.json").read_text())["steps"] == TOTAL
