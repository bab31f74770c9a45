"""train.stream: batches gathered from the memory-mapped set on the host are the batches of the on-device
path, so both give bitwise equal runs on the CPU (resumed mid-epoch too; under 2-process DDP in
test_distributed.py)."""

from __future__ import annotations

import pytest
import torch

from dcgan_lab.core.errors import ConfigError
from dcgan_lab.data.splits import load_split
from dcgan_lab.training import batches
from dcgan_lab.training.distributed import World
from dcgan_lab.training.loop import fit, history_frame
from helpers import calling, prepared, random_images, spec, with_train

CPU = torch.device("cpu")


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
    full = fit(spec(on_device, "final", seed=3), images, CPU, hooks=calling(on_checkpoint=snapshots.append))
    assert same_run(fit(spec(streamed, "final", seed=3), images, CPU), full)
    assert [s["step"] for s in snapshots] == [7, 14, 20]
    assert same_run(fit(spec(streamed, "final", seed=3), images, CPU, resume=snapshots[0]), full)


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


def test_batch_larger_than_dataset_is_a_config_error(params):
    big = with_train(params, batch_size=1000)  # more than the 512 images
    with pytest.raises(ConfigError, match=r"train\.batch_size: 1000 is larger than the training set \(512 images\)"):
        fit(spec(big, "baseline"), random_images(512), torch.device("cpu"))


def test_each_rank_takes_its_share_of_the_epoch_order(images):
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    shards = [batches.Shard(images, CPU, 32, False, World(rank, 2)) for rank in (0, 1)]
    assert [s.batches_per_epoch for s in shards] == [4, 4]  # 128 images per rank, 32 per step
    for s in shards:
        s.set_order(order)
    seen = torch.cat([torch.cat([s.batch(i) for i in range(4)]) for s in shards])
    expected = torch.cat([images[order[r::2][:128]] for r in (0, 1)])
    assert torch.equal(seen, expected)  # disjoint halves, each in the order's sequence
    with pytest.raises(ConfigError, match=r"\(256 images, 128 per rank\)"):
        batches.Shard(images, CPU, 200, False, World(0, 2))


def test_shard_labels_follow_the_order_and_d_steps_must_fit_the_set(images):
    labels = torch.arange(256) % 7  # the fixture's 256 images
    shard = batches.Shard(images, torch.device("cpu"), 32, False, World(), labels=labels)
    order = torch.randperm(256, generator=torch.Generator().manual_seed(0))
    shard.set_order(order)
    assert torch.equal(shard.labels(3), labels[order[96:128]])
    assert torch.equal(shard.batch(3), images[order[96:128]])
    with pytest.raises(ConfigError, match=r"^train\.d_steps: 10 D updates of 32 images per step need 320; the "
                                          r"training set has 256 images$"):
        batches.Shard(images, torch.device("cpu"), 32, False, World(), d_steps=10)
