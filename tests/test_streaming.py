"""train.stream: batches gathered from the memory-mapped set on the host are the batches of the on-device
path, so both give bitwise equal runs on the CPU (resumed mid-epoch and under 2-process DDP too).

Run by torchrun with arguments, this file is also the DDP worker of the last test."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import yaml

from conftest import ROOT, run, shrink
from dcgan_lab import batches
from dcgan_lab.config import ConfigError, parse_params
from dcgan_lab.data import load_split
from dcgan_lab.paths import run_paths
from dcgan_lab.train import Hooks, fit, history_frame, train_variant
from test_distributed import TORCHRUN, env_for
from test_failures import prepared

CPU = torch.device("cpu")


def with_train(params, **changes):
    return replace(params, train=replace(params.train, **changes))


def same_run(a, b) -> bool:
    models = [(a.g, b.g), (a.d, b.d), (a.ema.model, b.ema.model)]
    return history_frame(a).equals(history_frame(b)) and all(
        x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
        for x, y in ((m.state_dict(), n.state_dict()) for m, n in models))


@pytest.fixture
def images(tmp_path):
    """The train split as the train stage reads it: memory-mapped from a prepared file (256 images)."""
    return load_split(prepared(tmp_path), "train", mmap=True)[0]


def test_streamed_batches_are_the_on_device_batches(images):
    on_device, streamed = batches.OnDevice(images, CPU, 24), batches.Streamed(images, CPU, 24, ahead=3)
    gen = torch.Generator().manual_seed(0)
    # An epoch from its start, an epoch joined mid-way (resume, rollback), and a new order before the end.
    for start, stop in ((0, 10), (4, 10), (0, 3)):
        order = torch.randperm(len(images), generator=gen)
        on_device.set_order(order), streamed.set_order(order)
        for i in range(start, stop):
            assert torch.equal(streamed.batch(i), on_device.batch(i))
            assert all(i < j < len(order) // 24 for j in streamed.pending)  # never past the epoch's end
    streamed.close()


def test_stream_true_and_false_train_bitwise_equal_runs_and_resume_into_each_other(params, images):
    # 8 steps per epoch: checkpoints at 7 and 14 are mid-epoch, and 20 steps cross two epoch ends.
    p = with_train(params, epochs=3, max_steps=20, checkpoint_every=7, eval_every=0)
    on_device, streamed = with_train(p, stream=False), with_train(p, stream=True)
    snapshots = []
    full = fit(on_device, p.variant("final"), images, CPU, seed=3, hooks=Hooks(on_checkpoint=snapshots.append))
    assert same_run(fit(streamed, p.variant("final"), images, CPU, seed=3), full)
    assert [s["step"] for s in snapshots] == [7, 14, 20]
    assert same_run(fit(streamed, p.variant("final"), images, CPU, seed=3, resume=snapshots[0]), full)


def test_a_train_stage_run_resumes_with_the_other_stream_setting(params, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    p = with_train(params, max_steps=6, checkpoint_every=3, eval_every=0)
    data, paths = prepared(tmp_path), run_paths("baseline", 0, tmp_path)
    train_variant(with_train(p, stream=False), "baseline", 0, data, paths)
    train_variant(with_train(p, stream=True), "baseline", 0, data, paths)  # where batches come from: same run
    assert "baseline seed 0: resuming from step 6 " in capsys.readouterr().err


def test_null_streams_only_when_the_set_is_over_half_the_free_memory(images, monkeypatch, capsys):
    monkeypatch.setattr(batches, "free_bytes", lambda device: 2 * images.nbytes + 2)
    assert isinstance(batches.feeder(images, CPU, 32, None), batches.OnDevice)
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(batches, "free_bytes", lambda device: 2 * images.nbytes - 2)
    feed = batches.feeder(images, CPU, 32, None)
    assert isinstance(feed, batches.Streamed)
    assert capsys.readouterr().err.count("train.stream: streaming batches") == 1
    feed.close()
    assert isinstance(batches.feeder(images, CPU, 32, False), batches.OnDevice)  # an explicit choice stands
    assert batches.free_bytes(CPU) > 0  # MemAvailable from /proc/meminfo


def test_stream_takes_null_true_or_false(raw_params):
    raw = shrink(raw_params)
    raw["train"]["stream"] = "auto"
    with pytest.raises(ConfigError, match=r"^train\.stream: expected true or false, got 'auto' \(null is allowed too"):
        parse_params(raw)
    assert parse_params(shrink(raw_params)).train.stream is None


def test_two_cpu_ranks_stream_the_batches_they_would_gather_on_device(tmp_path):
    prepared(tmp_path)  # one prepared split, which both ranks read memory-mapped
    run(TORCHRUN + [__file__, str(tmp_path)], tmp_path, env_for(tmp_path), timeout=600)
    for rank in (0, 1):
        runs = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert runs[False]["world"] == 2 and len(runs[False]["history"]["step"]) == 6
        assert runs[True]["history"] == runs[False]["history"]
        for key in ("g", "d", "ema"):
            assert all(torch.equal(w, runs[True][key][k]) for k, w in runs[False][key].items()), key


def ddp_worker(out: Path) -> None:
    """Under torchrun: the same 6 steps (4 per epoch per rank) with stream false, then true; saves this rank's."""
    from dcgan_lab import distributed

    params = parse_params(shrink(yaml.safe_load((ROOT / "params.yaml").read_text())))
    params = with_train(params, max_steps=6, checkpoint_every=3, eval_every=0)
    world = distributed.init("cpu")
    images = load_split(out / "prepared", "train", mmap=True)[0]
    runs = {}
    for stream in (False, True):
        r = fit(with_train(params, stream=stream), params.variant("final"), images, CPU, seed=0, world=world)
        runs[stream] = {"g": r.g.state_dict(), "d": r.d.state_dict(), "ema": r.ema.model.state_dict(),
                        "history": history_frame(r).to_dict("list"), "world": world.size}
    torch.save(runs, out / f"rank{world.rank}.pt")
    distributed.shutdown()


if __name__ == "__main__":
    ddp_worker(Path(sys.argv[1]))
