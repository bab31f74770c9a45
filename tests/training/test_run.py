"""What a user sees when a training run cannot go on: one line naming the problem, a FAILED MLflow run
with the reason, the last good checkpoint kept, and no half-written outputs; and a run that resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dcgan_lab.core.errors import OutputError
from dcgan_lab.core.paths import run_paths
from dcgan_lab.data.splits import read_manifest
from dcgan_lab.gan.checkpoint import load_generator, load_meta
from dcgan_lab.gan.models import Generator
from dcgan_lab.training.ema import standing_statistics
from dcgan_lab.training.guard import Diverged
from dcgan_lab.training.run import train_variant
from dcgan_lab.training.spec import RunSpec
from dcgan_lab.training.state import standing_statistics_seed
from helpers import prepared, with_train


@pytest.fixture
def store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def described(params, variant: str, data: Path, seed: int = 0) -> RunSpec:
    """The run description the train stage resolves from params and the prepared data."""
    return RunSpec.for_data(params, variant, seed, read_manifest(data))


def paths_under(root: Path, variant: str = "baseline", seed: int = 0):
    """The run's paths as the train stage derives them from dvc.yaml's roots, under `root`."""
    return run_paths(variant, seed, root / "models", root / "checkpoints", root / "metrics" / "train")


def test_divergence_fails_the_mlflow_run_with_the_reason_and_keeps_the_last_checkpoint(params, tmp_path, store):
    p = with_train(params, max_steps=12, checkpoint_every=5, inject_nan_at=7, eval_every=0)
    paths = paths_under(tmp_path)
    data = prepared(tmp_path)
    with pytest.raises(Diverged, match=r"^training diverged at step 7: loss_d is nan$"):
        train_variant(described(p, "baseline", data), data, paths)
    (run,) = store.search_runs([store.get_experiment_by_name("dcgan-lab").experiment_id])
    assert run.info.status == "FAILED"
    assert run.data.tags["failure_reason"].startswith("training diverged at step 7: loss_d is nan")
    assert str(paths.state) in run.data.tags["failure_reason"]
    assert json.loads(paths.state.with_suffix(".json").read_text())["step"] == 5
    assert not paths.model.path.exists() and not paths.train_metrics.exists()


def test_rollback_finishes_the_run_and_records_it(params, tmp_path, store):
    p = with_train(params, max_steps=12, checkpoint_every=5, inject_nan_at=7, eval_every=0, on_divergence="rollback")
    paths = paths_under(tmp_path)
    data = prepared(tmp_path)
    summary = train_variant(described(p, "baseline", data), data, paths, tags={"git_commit": "abc"})
    assert summary["rollbacks"] == 1 and summary["steps"] == 12
    (run,) = store.search_runs([store.get_experiment_by_name("dcgan-lab").experiment_id])
    assert run.info.status == "FINISHED" and run.data.metrics["lr_scale"] == 0.5
    assert "step 7: loss_d is nan" in run.data.tags["last_rollback"]
    assert load_generator(paths.model.checkpoint, ema=True).spec == load_generator(paths.model.checkpoint).spec
    assert run.data.tags["git_commit"] == "abc" and run.data.tags["mlflow.runName"] == "baseline-seed0"
    # Everything the later stages read is where the paths say.
    for path in (paths.model.samples, paths.model.mlflow_run, paths.losses, paths.train_metrics):
        assert path.is_file(), path
    assert json.loads(paths.model.mlflow_run.read_text())["run_id"] == run.info.run_id
    # The run description, resolved once: in the model directory, in both checkpoints, in MLflow.
    described_run = described(p, "baseline", data).to_dict()
    assert json.loads(paths.model.description.read_text()) == described_run
    assert torch.load(paths.state, weights_only=True)["run"] == described_run
    assert load_meta(paths.model.checkpoint)["run"] == described_run
    assert json.loads(Path(store.download_artifacts(run.info.run_id, "run.json", str(tmp_path))).read_text()) == (
        described_run)
    assert json.loads(paths.train_metrics.read_text()) == summary
    # The architecture beside the checkpoint, and in the MLflow run: torchinfo tables and figures of G and D.
    names = ["discriminator.png", "discriminator.txt", "generator.png", "generator.txt"]
    architecture = paths.model.path / "architecture"
    assert sorted(p.name for p in architecture.iterdir()) == names
    g_params = sum(p.numel() for p in load_generator(paths.model.checkpoint).parameters())
    assert f"Total params: {g_params:,}\n" in (architecture / "generator.txt").read_text()
    assert sorted(a.path for a in store.list_artifacts(run.info.run_id, "architecture")) == [
        f"architecture/{name}" for name in names]


def test_the_saved_ema_generator_has_standing_statistics_and_the_resumable_checkpoint_keeps_the_copies(
        params, tmp_path, store):
    p = with_train(params, max_steps=4, eval_every=0, ema_bn_batches=3)
    paths, data = paths_under(tmp_path, "final"), prepared(tmp_path)
    run = described(p, "final", data)
    train_variant(run, data, paths)
    kept = torch.load(paths.state, weights_only=True)["state"]  # what a resume continues from
    saved = load_generator(paths.model.checkpoint, ema=True).state_dict()
    buffers = [name for name, _ in Generator(run.g).named_buffers()]
    assert all(torch.equal(kept["ema"][k], kept["g"][k]) for k in buffers)  # copied from the live G, as trained
    expected = Generator(run.g)
    expected.load_state_dict(kept["ema"])
    standing_statistics(expected, 3, p.train.batch_size, standing_statistics_seed(run.seed), torch.device("cpu"))
    assert all(torch.equal(v, expected.state_dict()[k]) for k, v in saved.items())  # the same weights, own statistics
    assert not torch.equal(saved["net.1.running_mean"], kept["ema"]["net.1.running_mean"])


def test_unwritable_output_directory_fails_before_training(params, tmp_path, store):
    blocker = tmp_path / "models"
    blocker.write_text("a file where the models directory should be")
    data, paths = prepared(tmp_path), paths_under(tmp_path)
    with pytest.raises(OutputError, match=r"models/baseline: cannot write outputs here \(.*\); check the path"):
        train_variant(described(params, "baseline", data), data, paths)
    assert store.get_experiment_by_name("dcgan-lab") is None, "no MLflow run is started for nothing"


def test_a_train_stage_run_resumes_with_the_other_stream_setting(params, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    p = with_train(params, max_steps=6, checkpoint_every=3, eval_every=0)
    data, paths = prepared(tmp_path), paths_under(tmp_path)
    train_variant(described(with_train(p, stream=False), "baseline", data), data, paths)
    train_variant(described(with_train(p, stream=True), "baseline", data), data, paths)  # where batches come from: same run
    assert "baseline seed 0: resuming from step 6 " in capsys.readouterr().err


def test_a_conditional_run_draws_one_row_per_class_and_its_checkpoint_rebuilds_alone(params, tmp_path, store):
    from PIL import Image

    p = with_train(params, max_steps=4, eval_every=0)  # sample_grid 16: 4 columns of fixed noise
    paths = paths_under(tmp_path, "cgan")
    data = prepared(tmp_path)
    summary = train_variant(described(p, "cgan", data), data, paths)
    g = load_generator(paths.model.checkpoint)
    assert g.spec.n_classes == 10 and summary["steps"] == 4  # the manifest's 10 classes
    assert Image.open(paths.model.samples).size == (4 * 34 + 2, 10 * 34 + 2)  # 32 px + 2 px padding: 10 rows
    (run,) = store.search_runs([store.get_experiment_by_name("dcgan-lab").experiment_id])
    assert run.data.params["variant.conditional"] == "True"


def test_a_wgan_gp_run_logs_the_critic_statistics(params, tmp_path, store):
    p = with_train(params, max_steps=3, eval_every=0)
    paths = paths_under(tmp_path, "wgan")
    data = prepared(tmp_path)
    summary = train_variant(described(p, "wgan", data), data, paths)
    assert {"wasserstein", "gp"} <= summary.keys() and "d_real" not in summary
    # img/s counts the real images a step reads: 5 critic batches of 32 per G update
    epoch_seconds = store.get_metric_history(
        store.search_runs([store.get_experiment_by_name("dcgan-lab").experiment_id])[0].info.run_id, "epoch_seconds")
    assert summary["images_per_sec"] == pytest.approx(
        sum(5 * 32 / m.value for m in epoch_seconds) / len(epoch_seconds), rel=0.02)
    (run,) = store.search_runs([store.get_experiment_by_name("dcgan-lab").experiment_id])
    assert {"wasserstein", "gp", "loss_d"} <= run.data.metrics.keys()
    # 256 images, 8 batches of 32 an epoch, 5 critic batches a step: 1 step an epoch, 2 in all
    assert summary["steps"] == 2 and len(store.get_metric_history(run.info.run_id, "gp")) == 2
    assert run.data.params["variant.d_steps"] == "5" and run.data.params["variant.loss"] == "wgan-gp"


def test_conditional_on_a_data_set_without_labels_and_wgan_gp_under_torchrun_are_one_line_errors(params, tmp_path,
                                                                                               store):
    from dcgan_lab.core.errors import ConfigError
    from dcgan_lab.training.distributed import World
    from dcgan_lab.training.run import check_launcher

    data = prepared(tmp_path)
    manifest = json.loads((data / "manifest.json").read_text())
    (data / "manifest.json").write_text(json.dumps({**manifest, "dataset": "folder", "classes": ["all"]}))
    with pytest.raises(ConfigError, match=r"^variants\.cgan\.conditional: true needs a labelled data set; folder "
                                          r"was prepared with 1 class \(all\)"):
        described(params, "cgan", data)
    wgan = described(params, "wgan", data)
    with pytest.raises(ConfigError, match=r"^variants\.wgan\.loss: wgan-gp is not supported under torchrun"):
        train_variant(wgan, data, paths_under(tmp_path, "wgan"), world=World(0, 2))
    assert store.get_experiment_by_name("dcgan-lab") is None, "no MLflow run is started for nothing"
    check_launcher(wgan, World())  # one process: fine
