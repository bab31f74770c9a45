"""What a run needs to continue exactly where it stopped, and its file on disk: written whole, resumed only
by the same config, seed, data and code, and an unreadable file is an error, not a fresh start."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from dcgan_lab.core.errors import CheckpointError
from dcgan_lab.training.loop import fit
from dcgan_lab.training.state import load_checkpoint, new_state, resume_tag, save_checkpoint
from helpers import calling, spec, with_train

CPU = torch.device("cpu")


def test_checkpoint_file_round_trip_changed_config_and_corrupt_file(params, images, tmp_path, capsys):
    p = with_train(params, max_steps=6, checkpoint_every=3, eval_every=0)
    path = tmp_path / "ckpt" / "state.pt"
    fit(spec(p, "baseline"), images, CPU,
        hooks=calling(on_checkpoint=lambda s: save_checkpoint(path, "tag-a", s, {"mlflow_run_id": "r1"})))
    blob = load_checkpoint(path, "tag-a")
    assert blob["state"]["step"] == 6 and blob["meta"]["mlflow_run_id"] == "r1"
    assert not list(path.parent.glob(".*")), "no temp files are left beside the checkpoint"
    assert load_checkpoint(path, "tag-b") is None
    assert "another config, seed, data set or code version: starting fresh" in capsys.readouterr().err
    path.write_bytes(path.read_bytes()[:1000])  # truncated, as by a full disk
    with pytest.raises(CheckpointError, match=r"state\.pt: not a readable resumable checkpoint .*delete it"):
        load_checkpoint(path, "tag-a")


def test_the_sidecar_shows_progress_and_no_checkpoint_means_a_fresh_start(params, tmp_path, capsys):
    import json

    run = new_state(spec(params, "baseline", seed=0), CPU)
    run.step = 4
    save_checkpoint(tmp_path / "state.pt", "tag-a", run.state_dict(), {"variant": "baseline", "seed": 0})
    assert json.loads((tmp_path / "state.json").read_text()) == {"step": 4, "tag": "tag-a", "variant": "baseline",
                                                                 "seed": 0}
    assert load_checkpoint(tmp_path / "missing.pt", "tag-a") is None and capsys.readouterr().err == ""
    assert load_checkpoint(tmp_path / "state.pt", "tag-b", quiet=True) is None and capsys.readouterr().err == ""


def test_resume_tag_changes_with_config_seed_and_data():
    base = resume_tag({"train": {"lr_g": 2.0e-4}}, 0, "sha-a")
    assert base == resume_tag({"train": {"lr_g": 2.0e-4}}, 0, "sha-a")
    assert len({base, resume_tag({"train": {"lr_g": 1.0e-4}}, 0, "sha-a"), resume_tag({"train": {"lr_g": 2.0e-4}}, 1, "sha-a"),
                resume_tag({"train": {"lr_g": 2.0e-4}}, 0, "sha-b")}) == 4


def test_state_round_trip_restores_models_optimizers_streams_and_the_global_rngs(params):
    a = new_state(spec(params, "final", seed=0), CPU)
    a.step, a.lr_scale, a.rollbacks, a.history = 7, 0.5, 1, [{"step": 1, "loss_d": 1.0}]
    a.order = torch.randperm(10)
    sd = a.state_dict()
    draws = (torch.rand(3), np.random.rand(3), random.random(), torch.rand(2, generator=a.noise_gen))
    b = new_state(spec(params, "final", seed=5), CPU)  # another seed: other weights and streams
    b.load_state_dict(sd)
    again = (torch.rand(3), np.random.rand(3), random.random(), torch.rand(2, generator=b.noise_gen))
    assert torch.equal(draws[0], again[0]) and np.array_equal(draws[1], again[1]) and draws[2] == again[2]
    assert torch.equal(draws[3], again[3])
    assert all(torch.equal(w, a.g.state_dict()[k]) for k, w in b.g.state_dict().items())
    assert (b.step, b.lr_scale, b.rollbacks, b.history) == (7, 0.5, 1, [{"step": 1, "loss_d": 1.0}])
    assert torch.equal(b.order, a.order)
    assert [g["lr"] for g in b.opt_d.param_groups] == [params.train.lr_d * 0.5]
    sd["g"][next(iter(sd["g"]))].add_(1.0)  # the snapshot is a copy: changing it leaves the run alone
    assert not torch.equal(sd["g"][next(iter(sd["g"]))], a.g.state_dict()[next(iter(sd["g"]))])
    no_ema = new_state(spec(with_train(params, ema_decay=0.0), "final", seed=0), CPU).state_dict()
    with pytest.raises(CheckpointError, match="no EMA generator but train.ema_decay > 0"):
        b.load_state_dict(no_ema)
