"""Every path the pipeline reads or writes comes from the roots a stage is given, in the documented layout."""

from pathlib import Path

from dcgan_lab.core import paths


def test_a_training_run_writes_under_models_checkpoints_and_its_metrics_root():
    run = paths.run_paths("final", 2, Path("m"), Path("ck"), Path("metrics/train"))
    assert run.model.path == Path("m/final/seed2")
    assert (run.model.checkpoint, run.model.best, run.model.samples, run.model.mlflow_run) == (
        Path("m/final/seed2/checkpoint.pt"), Path("m/final/seed2/best.pt"), Path("m/final/seed2/samples.png"),
        Path("m/final/seed2/mlflow_run.json"))
    assert run.train_metrics == Path("metrics/train/final/seed2.json")
    assert run.losses == Path("metrics/train/final/seed2_losses.csv")
    assert run.state == Path("ck/final/seed2/state.pt")
    assert paths.model_dir(Path("m"), "final", 2) == run.model  # what evaluate and report read back
    assert paths.train_metrics_file(Path("metrics/train"), "final", 2) == run.train_metrics
    assert paths.losses_file(Path("metrics/train"), "final", 2) == run.losses


def test_prepared_data_classifier_evaluation_and_report_files():
    assert paths.split_file(Path("data/prepared"), "val") == Path("data/prepared/val.pt")
    assert paths.manifest_file(Path("data/prepared")) == Path("data/prepared/manifest.json")
    assert paths.classifier_checkpoint(Path("models/classifier")) == Path("models/classifier/classifier.pt")
    ev = paths.EvalPaths(Path("metrics"))
    assert (ev.results, ev.table, ev.reference) == (
        Path("metrics/eval.json"), Path("metrics/eval.csv"), Path("metrics/reference.json"))
    rp = paths.ReportPaths(Path("metrics"), Path("plots"))
    assert (rp.markdown, rp.table, rp.summary) == (
        Path("metrics/ablation.md"), Path("metrics/ablation.csv"), Path("metrics/ablation.json"))
    assert rp.figures == {"fid": Path("plots/fid.png"), "losses": Path("plots/losses.png"),
                          "samples": Path("plots/samples.png")}
    assert (paths.PARAMS_FILE, paths.MLFLOW_DB, paths.OFFLINE_DB, paths.MLFLOW_ARTIFACTS) == (
        "params.yaml", "mlflow.db", "mlflow-offline.db", "mlartifacts")


def test_caches_follow_xdg_cache_home_else_the_home_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert paths.cache_dir() == tmp_path / "xdg" / "dcgan-lab"
    assert paths.fidelity_cache_dir() == tmp_path / "xdg" / "dcgan-lab" / "fidelity"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert paths.cache_dir() == tmp_path / "home" / ".cache" / "dcgan-lab"
