"""torchrun + DistributedDataParallel on CPU (gloo), 2 processes: replicas stay identical, rank 0 alone
writes and logs, and the train stage runs under the launcher params.yaml names."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from dcgan_lab.core.errors import ConfigError
from dcgan_lab.training import distributed
from dcgan_lab.training.distributed import RealFake, World
from helpers import ROOT, TORCHRUN, env_for, prepared, raw_params_file, run, shrink

WORKER = str(ROOT / "tests" / "training" / "ddp_worker.py")


# BN in G and D, spectral norm; cgan = final + conditional: augmentation, and labels through DDP
@pytest.mark.parametrize("variant", ["improved", "cgan"])
def test_two_cpu_ranks_keep_identical_weights(tmp_path, variant):
    run(TORCHRUN + [WORKER, str(tmp_path), "fit", variant], tmp_path, env_for(tmp_path), timeout=600)
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


def test_two_cpu_ranks_stream_the_batches_they_would_gather_on_device(tmp_path):
    prepared(tmp_path)  # one prepared split, which both ranks read memory-mapped
    run(TORCHRUN + [WORKER, str(tmp_path), "stream"], tmp_path, env_for(tmp_path), timeout=600)
    for rank in (0, 1):
        runs = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert runs[False]["world"] == 2 and len(runs[False]["history"]["step"]) == 6
        assert runs[True]["history"] == runs[False]["history"]
        for key in ("g", "d", "ema"):
            assert all(torch.equal(w, runs[True][key][k]) for k, w in runs[False][key].items()), key


def test_train_stage_under_torchrun_writes_and_logs_once(tmp_path):
    from mlflow.tracking import MlflowClient

    raw = shrink(raw_params_file())
    raw["train"].update(max_steps=8, checkpoint_every=4, eval_every=0, launcher="torchrun --nproc_per_node=2")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    data = prepared(tmp_path)
    result = run(TORCHRUN + [str(ROOT / "stages/train.py"), "--variant", "final", "--seed", "0", "--data", str(data),
                             "--classifier", "models/classifier", "--models", "models", "--checkpoints", "checkpoints",
                             "--metrics", "metrics/train"],
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
    assert (tmp_path / "models/final/seed0/checkpoint.pt").is_file() and not (tmp_path / "models/classifier").exists()


def test_one_process_is_a_world_of_one_and_sync_batch_norm_needs_cuda(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    world = distributed.init("cpu")  # not under torchrun: no process group
    assert world == World() and world.is_main and not world.distributed
    t = torch.arange(4.0)
    assert distributed.mean(t, world) is t and distributed.gather({"a": 1}, world) == [{"a": 1}]
    g, d = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
    g_step, pair = distributed.wrap(g, d, world, torch.device("cpu"), sync_batch_norm=False)
    assert g_step is g and isinstance(pair, RealFake) and pair.d is d  # no DDP wrapper for one process
    real, fake = pair(torch.ones(3, 2), torch.zeros(3, 2))
    assert torch.equal(real, d(torch.ones(3, 2))) and torch.equal(fake, d(torch.zeros(3, 2)))
    with pytest.raises(ConfigError, match=r"^train\.sync_batch_norm: true needs CUDA devices .*this run is on cpu"):
        distributed.wrap(g, d, World(0, 2), torch.device("cpu"), sync_batch_norm=True)
