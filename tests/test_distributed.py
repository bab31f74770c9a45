"""torchrun + DistributedDataParallel on CPU (gloo), 2 processes: replicas stay identical, rank 0 alone
writes and logs, and the train stage runs under the launcher params.yaml names."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch
import yaml

from conftest import ROOT, run, shrink
from test_failures import prepared

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]


def env_for(tmp_path: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests"), "OMP_NUM_THREADS": "1",
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    env.pop("WORLD_SIZE", None)
    return env


@pytest.mark.parametrize("variant", ["improved", "final"])  # BN in G and D, spectral norm, augmentation
def test_two_cpu_ranks_keep_identical_weights(tmp_path, variant):
    run(TORCHRUN + [str(ROOT / "tests/ddp_worker.py"), str(tmp_path), variant], tmp_path, env_for(tmp_path),
        timeout=600)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["world"] == 2
    for key in ("g", "d", "ema"):
        # Weights (and spectral norm's power-iteration vectors) are identical. Batch norm running statistics
        # are per rank between DDP's broadcasts of rank 0's buffers at each forward; rank 0's are saved.
        shared = [k for k in r0[key] if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
        assert all(torch.equal(r0[key][k], r1[key][k]) for k in shared), f"{key} differs between ranks"
        assert any("weight" in k for k in shared)
    # Logged statistics are averaged over ranks, so both ranks see (and guard on) the same numbers.
    assert r0["history"] == r1["history"] and len(r0["history"]["step"]) == 6


def test_train_stage_under_torchrun_writes_and_logs_once(tmp_path):
    from mlflow.tracking import MlflowClient

    raw = shrink(yaml.safe_load((ROOT / "params.yaml").read_text()))
    raw["train"].update(max_steps=8, checkpoint_every=4, eval_every=0, launcher="torchrun --nproc_per_node=2")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    data = prepared(tmp_path)
    result = run(TORCHRUN + [str(ROOT / "stages/train.py"), "--variant", "final", "--seed", "0", "--data", str(data)],
                 tmp_path, env_for(tmp_path), timeout=600)
    assert result.stdout.count("final seed 0: 8 steps") == 1  # rank 0 reports, rank 1 is quiet
    summary = json.loads((tmp_path / "metrics/train/final/seed0.json").read_text())
    assert summary["steps"] == 8 and summary["batch_size"] == 32
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    (mlflow_run,) = client.search_runs([client.get_experiment_by_name("dcgan-lab").experiment_id])
    assert sorted(m.step for m in client.get_metric_history(mlflow_run.info.run_id, "loss_d")) == list(range(1, 9))
    assert mlflow_run.data.params["train.launcher"] == "torchrun --nproc_per_node=2"
    state = torch.load(tmp_path / "checkpoints/final/seed0/state.pt", weights_only=True)
    assert len(state["state"]["generators"]) == 2  # each rank's random streams, for an exact resume
