"""End to end: the real `dvc repro` on a copy of this repo with shrunk params, real MLflow and torch-fidelity."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from conftest import ROOT, shrink

VARIANTS = ["baseline", "improved", "final"]
pytestmark = pytest.mark.e2e


def run(cmd, cwd, env, check=True):
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def repo_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.split()
    # Start from a clean slate: no lock, no metrics from the committed full-size run.
    return [f for f in out if (ROOT / f).is_file() and f != "dvc.lock" and not f.startswith("metrics/")]


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    dst = tmp_path_factory.mktemp("repo")
    for f in repo_files():
        (dst / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, dst / f)
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    (dst / "params.yaml").write_text(yaml.safe_dump(shrink(raw), sort_keys=False))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for var in ("MLFLOW_TRACKING_URI", "DVC_EXP_NAME"):
        env.pop(var, None)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    run(["git", "init", "-q"], dst, env)
    run(git + ["add", "-A"], dst, env)
    run(git + ["commit", "-qm", "copy"], dst, env)
    first = run(["dvc", "repro"], dst, env)
    return dst, env, first.stdout


def test_all_outputs_exist(repo):
    dst, _, _ = repo
    expected = ["data/prepared/train.pt", "data/prepared/test.pt", "data/prepared/manifest.json",
                "models/classifier/classifier.pt", "metrics/classifier.json", "metrics/eval.json", "metrics/eval.csv",
                "dvc.lock"]
    for v in VARIANTS:
        expected += [f"models/{v}/checkpoint.pt", f"models/{v}/samples.png", f"models/{v}/mlflow_run.json",
                     f"metrics/train/{v}.json", f"metrics/train/{v}_losses.csv"]
    assert [p for p in expected if not (dst / p).is_file()] == []
    lock = yaml.safe_load((dst / "dvc.lock").read_text())
    assert set(lock["stages"]) == {"prepare", "train_classifier", "evaluate", *(f"train@{v}" for v in VARIANTS)}


def test_eval_metrics_are_finite_and_say_how_they_were_measured(repo):
    dst, _, _ = repo
    results = json.loads((dst / "metrics/eval.json").read_text())
    assert list(results) == VARIANTS
    for r in results.values():
        assert math.isfinite(r["fid"]) and r["fid"] >= 0 and r["is_mean"] >= 1 and math.isfinite(r["is_std"])
        assert (r["extractor"], r["n_samples"], r["n_real"], r["real_split"]) == ("dcgan-lab-classifier", 200, 300,
                                                                                 "test")
    steps = [json.loads((dst / f"metrics/train/{v}.json").read_text())["steps"] for v in VARIANTS]
    assert steps == [12, 12, 12]


def test_mlflow_holds_one_run_per_variant_with_steps_images_checkpoint_and_scores(repo):
    from mlflow.tracking import MlflowClient

    dst, _, _ = repo
    client = MlflowClient(tracking_uri=f"sqlite:///{dst / 'mlflow.db'}")
    exp = client.get_experiment_by_name("dcgan-lab")
    runs = client.search_runs([exp.experiment_id])
    assert sorted(r.data.tags["variant"] for r in runs) == sorted(VARIANTS)
    for r in runs:
        assert r.info.status == "FINISHED"
        assert r.data.params["variant.name"] == r.data.tags["variant"] and r.data.params["train.batch_size"] == "32"
        assert "git_commit" in r.data.tags and r.data.tags["eval.extractor"] == "dcgan-lab-classifier"
        for name in ("loss_d", "loss_g", "d_real", "d_fake"):
            history = client.get_metric_history(r.info.run_id, name)
            assert sorted(m.step for m in history) == list(range(1, 13))
        assert {"fid", "is_mean", "is_std", "images_per_sec"} <= set(r.data.metrics)
        artifacts = {a.path for a in client.list_artifacts(r.info.run_id)}
        assert {"checkpoint", "samples", "images"} <= artifacts
        assert [a.path for a in client.list_artifacts(r.info.run_id, "checkpoint")] == ["checkpoint/checkpoint.pt"]
        run_file = json.loads((dst / f"models/{r.data.tags['variant']}/mlflow_run.json").read_text())
        assert run_file["run_id"] == r.info.run_id


def test_second_repro_does_nothing(repo):
    dst, env, _ = repo
    again = run(["dvc", "repro"], dst, env)
    assert "Running stage" not in again.stdout
    assert "Data and pipelines are up to date" in run(["dvc", "status"], dst, env).stdout


def test_a_variant_param_change_reruns_only_that_variant_and_evaluate(repo, tmp_path):
    dst, env, _ = repo
    params = dst / "params.yaml"
    original = params.read_text()
    raw = yaml.safe_load(original)
    raw["variants"]["final"]["augment"]["cutout"] = 0.3
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    try:
        status = run(["dvc", "status", "--json"], dst, env).stdout
    finally:
        params.write_text(original)
    assert set(json.loads(status)) == {"train@final", "evaluate"}


def test_checkpoint_rebuilds_the_generator_alone(repo):
    from dcgan_lab.checkpoint import load_generator, load_meta

    dst, _, _ = repo
    g = load_generator(dst / "models/final/checkpoint.pt")
    assert g.spec.activation == "relu" and g.spec.batch_norm
    assert g(torch.randn(2, g.spec.latent_dim)).shape == (2, 1, 32, 32)
    assert load_meta(dst / "models/final/checkpoint.pt")["variant"] == "final"


def test_bad_input_is_one_line_exit_2_and_writes_nothing(repo, tmp_path):
    dst, env, _ = repo
    raw = yaml.safe_load((dst / "params.yaml").read_text())
    raw["train"]["batchsize"] = 8
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    out = tmp_path / "prepared"
    result = run([sys.executable, "stages/prepare.py", "--params", str(bad), "--out", str(out)], dst, env, check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: train.batchsize: unknown key (did you mean 'batch_size'?); allowed: " \
        "seed, device, batch_size, epochs, max_steps, lr_g, lr_d, betas, loss, log_every, sample_grid"
    assert not out.exists()
    result = run([sys.executable, "stages/train.py", "--variant", "fnal"], dst, env, check=False)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "error: variant: unknown variant 'fnal'; allowed: baseline, improved, final"]
    assert not (dst / "models/fnal").exists()
