"""What a user sees when a training run cannot go on: one line naming the problem, a FAILED MLflow run
with the reason, the last good checkpoint kept, and no half-written outputs."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import pytest
import torch

from dcgan_lab.checkpoint import load_generator, save_gan
from dcgan_lab.data import load_split
from dcgan_lab.errors import CheckpointError, DataError, OutputError
from dcgan_lab.guard import Diverged
from dcgan_lab.models import Discriminator, Generator
from dcgan_lab.paths import run_paths
from dcgan_lab.train import gan_specs, train_variant


def prepared(tmp_path, n=256):
    """A prepared data directory as the prepare stage writes it (uint8 images, labels, manifest)."""
    data = tmp_path / "prepared"
    data.mkdir()
    images = torch.randint(0, 256, (n, 1, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    torch.save({"images": images, "labels": torch.zeros(n, dtype=torch.long)}, data / "train.pt")
    sha = hashlib.sha256(images.numpy().tobytes()).hexdigest()
    (data / "manifest.json").write_text(json.dumps({"splits": {"train": {"n": n, "sha256": sha}}}))
    return data


@pytest.fixture
def store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def test_divergence_fails_the_mlflow_run_with_the_reason_and_keeps_the_last_checkpoint(params, tmp_path, store):
    p = replace(params, train=replace(params.train, max_steps=12, checkpoint_every=5, inject_nan_at=7, eval_every=0))
    paths = run_paths("baseline", 0, tmp_path)
    with pytest.raises(Diverged, match=r"^training diverged at step 7: loss_d is nan$"):
        train_variant(p, "baseline", 0, prepared(tmp_path), paths)
    (run,) = store.search_runs([store.get_experiment_by_name("dcgan-lab").experiment_id])
    assert run.info.status == "FAILED"
    assert run.data.tags["failure_reason"].startswith("training diverged at step 7: loss_d is nan")
    assert str(paths.state) in run.data.tags["failure_reason"]
    assert json.loads(paths.state.with_suffix(".json").read_text())["step"] == 5
    assert not paths.model_dir.exists() and not paths.train_metrics.exists()


def test_rollback_finishes_the_run_and_records_it(params, tmp_path, store):
    p = replace(params, train=replace(params.train, max_steps=12, checkpoint_every=5, inject_nan_at=7, eval_every=0,
                                      on_divergence="rollback"))
    paths = run_paths("baseline", 0, tmp_path)
    summary = train_variant(p, "baseline", 0, prepared(tmp_path), paths)
    assert summary["rollbacks"] == 1 and summary["steps"] == 12
    (run,) = store.search_runs([store.get_experiment_by_name("dcgan-lab").experiment_id])
    assert run.info.status == "FINISHED" and run.data.metrics["lr_scale"] == 0.5
    assert "step 7: loss_d is nan" in run.data.tags["last_rollback"]
    assert load_generator(paths.checkpoint, ema=True).spec == load_generator(paths.checkpoint).spec


def test_unwritable_output_directory_fails_before_training(params, tmp_path, store):
    blocker = tmp_path / "models"
    blocker.write_text("a file where the models directory should be")
    paths = run_paths("baseline", 0, tmp_path)
    with pytest.raises(OutputError, match=r"models/baseline: cannot write outputs here \(.*\); check the path"):
        train_variant(params, "baseline", 0, prepared(tmp_path), paths)
    assert store.get_experiment_by_name("dcgan-lab") is None, "no MLflow run is started for nothing"


def test_corrupt_prepared_data_is_a_checksum_error(tmp_path):
    data = prepared(tmp_path)
    blob = torch.load(data / "train.pt", weights_only=True)
    blob["images"][0, 0, 0, 0] ^= 1  # one flipped bit
    torch.save(blob, data / "train.pt")
    with pytest.raises(DataError, match=r"train\.pt: checksum mismatch \(manifest [0-9a-f]{12}\.\.\., file "):
        load_split(data, "train")
    (data / "train.pt").write_bytes(b"\0" * 100)
    with pytest.raises(DataError, match=r"train\.pt: not a readable prepared split"):
        load_split(data, "train")


def test_incompatible_checkpoint_is_one_clear_error(params, tmp_path):
    g_spec, d_spec = gan_specs(params, params.variant("final"), channels=1)
    save_gan(tmp_path / "ckpt.pt", Generator(g_spec), Discriminator(d_spec))
    blob = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    blob["generator"]["spec"]["width"] *= 2  # weights no longer fit the spec: another version's file
    torch.save(blob, tmp_path / "ckpt.pt")
    with pytest.raises(CheckpointError, match=r"ckpt\.pt: not a dcgan-lab GAN checkpoint, or one made by an "
                                              r"incompatible version"):
        load_generator(tmp_path / "ckpt.pt")
    with pytest.raises(CheckpointError, match="incompatible version"):
        load_generator(tmp_path / "ckpt.pt", ema=True)  # no EMA generator in this file
