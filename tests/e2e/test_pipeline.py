"""End to end: the real `dvc repro` on a copy of this repo with shrunk params, real MLflow and torch-fidelity."""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import pytest
import torch
import yaml

from helpers import raw_params_file, repo_copy, run, shrink

# Two of the seven variants params.yaml defines: `ablation.variants` alone decides what the pipeline trains.
VARIANTS = ["radford", "final"]
SEEDS = [0, 1]  # two seeds, so the report has intervals and paired tests
# The train stage's command line as dvc.yaml spells it, for a variant and a seed.
TRAIN = ["stages/train.py", "--data", "data/prepared", "--classifier", "models/classifier", "--models", "models",
         "--checkpoints", "checkpoints", "--metrics", "metrics/train"]
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    dst = tmp_path_factory.mktemp("repo")
    raw = shrink(raw_params_file())
    assert list(raw["variants"]) == ["radford", "baseline", "improved", "final", "cgan", "cgan_cbn", "wgan"]
    raw["ablation"].update(variants=VARIANTS, seeds=SEEDS)
    env = repo_copy(dst, raw)
    first = run(["dvc", "repro"], dst, env)
    return dst, env, first.stdout


def test_all_outputs_exist(repo):
    dst, _, _ = repo
    expected = ["data/prepared/train.pt", "data/prepared/test.pt", "data/prepared/manifest.json",
                "models/classifier/classifier.pt", "metrics/classifier.json", "metrics/eval.json", "metrics/eval.csv",
                "metrics/ablation.json", "metrics/ablation.csv", "metrics/ablation.md", "plots/fid.png",
                "plots/losses.png", "plots/samples.png", "dvc.lock", "metrics/reference.json",
                "metrics/extractor.json", "plots/extractor.png", "models/second_classifier/classifier.pt",
                "metrics/second_classifier.json"]
    for v in VARIANTS:
        for s in SEEDS:
            expected += [f"models/{v}/seed{s}/checkpoint.pt", f"models/{v}/seed{s}/best.pt",
                         f"models/{v}/seed{s}/samples.png",
                         f"models/{v}/seed{s}/mlflow_run.json", f"metrics/train/{v}/seed{s}.json",
                         f"metrics/train/{v}/seed{s}_losses.csv", f"metrics/eval/{v}/seed{s}.json"]
    assert [p for p in expected if not (dst / p).is_file()] == []
    # The reference stage's cache of the real split's features: per layer, and the FID statistics.
    names = sorted(p.name for p in (dst / "data/features").iterdir())
    pattern = r"dcgan-lab-real-[0-9a-f]{24}-(dcgan-lab-\w+)-(.*)\.pt"
    assert sorted(re.fullmatch(pattern, n).groups() for n in names) == [
        (space, f) for space in ("dcgan-lab-classifier", "dcgan-lab-lenet")  # both feature spaces
        for f in ("features-features", "features-logits", "stat-fid-features")]
    lock = yaml.safe_load((dst / "dvc.lock").read_text())
    assert set(lock["stages"]) == {"prepare", "train_classifier", "train_second_classifier", "validate_extractor",
                                   "reference", "report",
                                   *(f"{stage}@{v}-{s}" for stage in ("train", "evaluate") for v in VARIANTS
                                     for s in SEEDS)}
    assert sorted(p.name for p in (dst / "models").iterdir()) == ["classifier", *sorted(VARIANTS), "second_classifier"]


def test_eval_metrics_are_finite_and_say_how_they_were_measured(repo):
    dst, _, _ = repo
    results = json.loads((dst / "metrics/eval.json").read_text())
    assert list(results) == VARIANTS and all(list(r) == ["seed0", "seed1"] for r in results.values())
    assert results == {v: {f"seed{s}": json.loads((dst / f"metrics/eval/{v}/seed{s}.json").read_text()) for s in SEEDS}
                       for v in VARIANTS}  # the report's aggregate of the evaluate@ stages' files
    for r in (r for by_seed in results.values() for r in by_seed.values()):
        for key in ("fid", "is_mean", "is_std", "kid_mean", "kid_std", "precision", "recall", "class_kl_uniform"):
            assert math.isfinite(r[key]), key
        assert r["fid"] >= 0 and r["is_mean"] >= 1 - 1e-6 and 0 <= r["classes_covered"] <= 10
        assert (r["extractor"], r["n_samples"], r["n_real"], r["real_split"]) == ("dcgan-lab-classifier", 200, 300,
                                                                                 "test")
    train = [json.loads((dst / f"metrics/train/{v}/seed{s}.json").read_text()) for v in VARIANTS for s in SEEDS]
    assert [t["steps"] for t in train] == [12] * len(VARIANTS) * len(SEEDS)
    assert all(t["best_step"] in (5, 10, 12) and math.isfinite(t["best_fid_quick"]) for t in train)
    for r in (r for by_seed in results.values() for r in by_seed.values()):
        assert r["best_step"] in (5, 10, 12) and math.isfinite(r["best_fid"]) and math.isfinite(r["best_kid_mean"])
    assert results["final"]["seed0"]["fid"] != results["final"]["seed1"]["fid"]  # seeds are different runs
    accuracy = json.loads((dst / "metrics/classifier.json").read_text())["test_accuracy"]
    assert all(r["extractor_test_accuracy"] == accuracy for by_seed in results.values() for r in by_seed.values())
    reference = json.loads((dst / "metrics/reference.json").read_text())
    assert reference["n_per_half"] == 150 and math.isfinite(reference["fid_half_vs_half"])
    assert reference["second"]["extractor"] == "dcgan-lab-lenet" and math.isfinite(reference["second"]["fid_half_vs_half"])
    for r in (r for by_seed in results.values() for r in by_seed.values()):  # every generator, in the second space too
        assert r["second_extractor"] == "dcgan-lab-lenet"
        assert all(math.isfinite(r[k]) for k in ("second_fid", "best_second_fid", "ema_second_fid", "ema_second_recall"))
    assert reference["is_real"] >= 1 - 1e-6
    report = (dst / "metrics/ablation.md").read_text()
    assert "Real data under the same extractor, for scale: FID between two halves of the test split" in report
    assert "## How it was measured\n\nextractor = dcgan-lab-classifier" in report and "| final | 2 |" in report
    assert f"extractor test accuracy = {accuracy}" in report  # evaluate put it beside every score
    assert "| FID | final | radford |" in report and "a test needs at least 2 seeds" not in report
    # The mode-collapse line first (12-step generators may well be flagged), then the feature-space flag if the tiny
    # classifier failed a check of validate_extractor (metrics/extractor.json), then the design.
    assert report.startswith("# Ablation report\n\n**Mode collapse")
    validation = json.loads((dst / "metrics/extractor.json").read_text())["extractors"]["dcgan-lab-classifier"]
    opening = report.split("\n\n")[2:4]
    if not validation["ok"]:
        assert opening.pop(0).startswith("**Feature-space warning:** `dcgan-lab-classifier` failed ")
    assert opening[0].startswith("## Design (declared in params.yaml `ablation:` before the runs)")
    assert "Feature space `dcgan-lab-classifier` checked (validate_extractor, metrics/extractor.json)" in report
    assert all(len(r["intra_diversity"]) == 10 and "collapse" in r for by_seed in results.values()
               for r in by_seed.values())
    assert "- Seeds: 0, 1 (2 per variant)." in report
    (line,) = [line for line in report.splitlines() if line.startswith("- final vs radford: ")]
    assert "on FID of EMA G" in line and "simultaneous interval" in line and "paired t" in line
    assert "of 2 seeds favour" in line
    assert "FID∞ (Chong & Forsyth 2020)" in report and "| FID∞ of EMA G ↓ |" in report
    summary = json.loads((dst / "metrics/ablation.json").read_text())
    assert summary["final"]["n_seeds"] == 2 and math.isfinite(summary["final"]["fid_ci95"])
    assert math.isfinite(summary["final"]["fid_sd"]) and math.isfinite(summary["final"]["ema_fid_inf_mean"])
    assert summary["design"] == {"primary": "ema_fid", "margin": 1.0, "alpha": 0.05, "comparisons": 1,
                                 "level": 0.05, "correction": "Bonferroni", "control": "radford", "seeds": [0, 1]}
    comparison = summary["verdicts"]["final_vs_radford"]
    mark = comparison["second_space"]["mark"]  # re-decided in the second feature space
    assert comparison["verdict"] in ("better", "equivalent", "inconclusive")
    assert line[2:] == f"{comparison['sentence']} — **{mark}**"
    assert mark == "holds in both spaces" or mark.startswith("differs in the second space: ")
    assert summary["second_space"]["extractor"] == "dcgan-lab-lenet" and summary["second_space"]["of"] == 1
    assert "## The verdicts in a second feature space (a robustness check)" in report
    assert comparison["test"] == "paired t" and 0 <= comparison["p"] <= comparison["p_bonferroni"] <= 1
    assert math.isfinite(comparison["fid_inf_diff"])  # FID∞ of the EMA generators, beside the verdict
    assert "better" not in summary["exploratory"]["final_vs_radford"]["is"]["sentence"]


def test_mlflow_holds_one_run_per_variant_with_steps_images_checkpoint_and_scores(repo):
    from mlflow.tracking import MlflowClient

    dst, _, _ = repo
    client = MlflowClient(tracking_uri=f"sqlite:///{dst / 'mlflow.db'}")
    exp = client.get_experiment_by_name("dcgan-lab")
    all_runs = client.search_runs([exp.experiment_id])
    runs = [r for r in all_runs if r.data.tags["variant"] != "ablation"]
    assert sorted((r.data.tags["variant"], r.data.tags["seed"]) for r in runs) == sorted(
        (v, str(s)) for v in VARIANTS for s in SEEDS)
    (report_run,) = [r for r in all_runs if r.data.tags["variant"] == "ablation"]
    assert {a.path for a in client.list_artifacts(report_run.info.run_id, "report")} >= {
        "report/ablation.md", "report/fid.png", "report/samples.png", "report/verdicts.txt"}
    verdicts = json.loads((dst / "metrics/ablation.json").read_text())["verdicts"]
    assert report_run.data.tags["verdict.final_vs_radford"] == verdicts["final_vs_radford"]["outcome"]
    assert report_run.data.tags["design.primary"] == "ema_fid" and report_run.data.tags["design.margin"] == "1.0"
    text = client.download_artifacts(report_run.info.run_id, "report/verdicts.txt", str(dst / "tmp-artifacts"))
    mark = verdicts["final_vs_radford"]["second_space"]["mark"]
    assert open(text).read().splitlines()[1:] == [f"{verdicts['final_vs_radford']['sentence']} — {mark}"]
    assert report_run.data.tags["robustness.final_vs_radford"] == mark
    assert "final.fid_mean" in report_run.data.metrics
    assert {"final.ema_fid_ci_low", "final.ema_fid_ci_high"} <= set(report_run.data.metrics)  # the primary's interval
    from dcgan_lab.core.params import parse_params
    from dcgan_lab.tracking.provenance import split_sha256s, study_id

    ablation = parse_params(yaml.safe_load((dst / "params.yaml").read_text())).ablation
    study = study_id(ablation, split_sha256s(dst / "data/prepared"))
    assert {r.data.tags["study"] for r in all_runs} == {study}  # what the MLflow UI groups a study's runs on
    for r in runs:
        assert r.info.status == "FINISHED"
        assert r.data.params["variant.name"] == r.data.tags["variant"] and r.data.params["train.batch_size"] == "32"
        assert "git_commit" in r.data.tags and r.data.tags["eval.extractor"] == "dcgan-lab-classifier"
        assert "collapse" in r.data.tags  # the mode-collapse alarm: "none", or each flagged generator and why
        assert r.data.tags["ablation_run_id"] == report_run.info.run_id
        for name in ("loss_d", "loss_g", "d_real", "d_fake"):
            history = client.get_metric_history(r.info.run_id, name)
            assert sorted(m.step for m in history) == list(range(1, 13))
        assert sorted(m.step for m in client.get_metric_history(r.info.run_id, "fid_quick")) == [5, 10, 12]
        assert {"fid", "is_mean", "is_std", "kid_mean", "precision", "recall", "classes_covered", "best_fid",
                "images_per_sec"} <= set(r.data.metrics)
        artifacts = {a.path for a in client.list_artifacts(r.info.run_id)}
        assert {"checkpoint", "samples", "images"} <= artifacts
        assert [a.path for a in client.list_artifacts(r.info.run_id, "checkpoint")] == ["checkpoint/checkpoint.pt"]
        run_file = json.loads(
            (dst / f"models/{r.data.tags['variant']}/seed{r.data.tags['seed']}/mlflow_run.json").read_text())
        assert run_file["run_id"] == r.info.run_id


def test_second_repro_does_nothing(repo):
    dst, env, _ = repo
    again = run(["dvc", "repro"], dst, env)
    assert "Running stage" not in again.stdout
    assert "Data and pipelines are up to date" in run(["dvc", "status"], dst, env).stdout


def test_a_variant_param_change_reruns_only_that_variants_runs_and_their_evaluation(repo, tmp_path):
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
    # Only final's stages see the change; its evaluate@ stages and report rerun after them because their models
    # changed (their deps), not because of the variant's params; radford's runs are not scored again.
    assert set(json.loads(status)) == {"train@final-0", "train@final-1"}
    dag = run(["dvc", "dag", "--dot"], dst, env).stdout
    assert '"train@final-0" -> "evaluate@final-0"' in dag and '"evaluate@final-0" -> "report"' in dag
    assert '"train@final-0" -> "evaluate@radford-0"' not in dag and '"reference" -> "evaluate@final-0"' in dag


def test_a_change_to_a_variant_the_ablation_does_not_train_reruns_nothing(repo):
    dst, env, _ = repo
    params = dst / "params.yaml"
    original = params.read_text()
    raw = yaml.safe_load(original)
    raw["variants"]["baseline"]["g_batch_norm"] = True  # defined in params.yaml, not in ablation.variants
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    try:
        status = run(["dvc", "status", "--json"], dst, env).stdout
    finally:
        params.write_text(original)
    assert json.loads(status) == {}


def test_checkpoint_rebuilds_the_generator_alone(repo):
    from dcgan_lab.gan.checkpoint import load_generator, load_meta

    dst, _, _ = repo
    g = load_generator(dst / "models/final/seed0/checkpoint.pt")
    assert g.spec.activation == "relu" and g.spec.batch_norm
    assert g(torch.randn(2, g.spec.latent_dim)).shape == (2, 1, 32, 32)
    assert load_meta(dst / "models/final/seed0/checkpoint.pt")["variant"] == "final"


def test_bad_input_is_one_line_exit_2_and_writes_nothing(repo, tmp_path):
    dst, env, _ = repo
    raw = yaml.safe_load((dst / "params.yaml").read_text())
    raw["train"]["batchsize"] = 8
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    out = tmp_path / "prepared"
    result = run([sys.executable, "stages/prepare.py", "--params", str(bad), "--out", str(out)], dst, env, check=False)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: train.batchsize: unknown key (did you mean 'batch_size'?); allowed: "
                           "device, batch_size, epochs, max_steps, lr_g, lr_d, betas, loss, d_steps, gp_weight, mode_seeking, "
                           "log_every, sample_grid, eval_every, eval_samples, checkpoint_every, deterministic, "
                           "ema_decay, ema_bn_batches, collapse_patience,")
    assert not out.exists()
    result = run([sys.executable, *TRAIN, "--variant", "fnal", "--seed", "0"], dst, env, check=False)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "error: variant: unknown variant 'fnal'; allowed: radford, baseline, improved, final, cgan, cgan_cbn, wgan"]
    assert not (dst / "models/fnal").exists()


def test_an_unknown_name_in_ablation_variants_stops_with_one_line(repo, tmp_path):
    dst, env, _ = repo
    params = dst / "params.yaml"
    original = params.read_text()
    raw = yaml.safe_load(original)
    raw["ablation"]["variants"] = ["radford", "fnal"]
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    line = ("error: ablation.variants: 'fnal' is not a variant; allowed: radford, baseline, improved, final, cgan, "
            "cgan_cbn, wgan (did you mean 'final'?)")
    try:
        result = run([sys.executable, *TRAIN, "--variant", "radford", "--seed", "0"], dst, env, check=False)
        assert result.returncode == 2 and result.stderr.strip().splitlines() == [line]
        repro = run(["dvc", "repro"], dst, env, check=False)  # the matrix now has train@fnal-0
    finally:
        params.write_text(original)
    # Under `dvc repro`, DVC expands the matrix first and refuses train@fnal-0 itself, in one line naming it.
    assert repro.returncode != 0 and "Traceback" not in repro.stdout + repro.stderr
    assert repro.stderr.strip().splitlines() == [
        "ERROR: failed to reproduce 'train@fnal-0': Parameters 'variants.fnal' are missing from 'params.yaml'."]
    assert not (dst / "models/fnal").exists()


def test_adding_a_seed_trains_and_scores_only_the_new_runs_then_reports(repo):
    """Last in this module: it leaves the copy with a third seed. DVC's own output names the stages it ran."""
    dst, env, _ = repo
    params = dst / "params.yaml"
    raw = yaml.safe_load(params.read_text())
    raw["ablation"]["seeds"] = [*SEEDS, 2]
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    out = run(["dvc", "repro"], dst, env).stdout
    ran = re.findall(r"^Running stage '([^']+)'", out, flags=re.M)
    assert sorted(ran) == sorted(["report", *(f"{stage}@{v}-2" for stage in ("train", "evaluate") for v in VARIANTS)])
    assert ran[-1] == "report"
    results = json.loads((dst / "metrics/eval.json").read_text())
    assert all(list(by_seed) == ["seed0", "seed1", "seed2"] for by_seed in results.values())
    assert "Running stage" not in run(["dvc", "repro"], dst, env).stdout


def test_the_study_runner_runs_the_next_look_while_a_comparison_is_open_then_stops(repo):
    """After the seed test (radford's seeds 0-2 exist). A variant that differs from radford only in Adam's beta2
    (0.998: other digits, no systematic effect in 12 steps), a margin no study could reach and alpha 0.001 leave the
    comparison open at the first look (2 seeds), so `dcgan-lab study` extends the seeds to the declared second look
    (3) from the declared sequence, runs it (radford_b's third seed alone: radford's is trained and scored), and
    stops: the last look."""
    dst, env, _ = repo
    params = dst / "params.yaml"
    raw = yaml.safe_load(params.read_text())
    raw["variants"]["radford_b"] = {**raw["variants"]["radford"], "betas": [0.5, 0.998]}
    raw["ablation"].update(variants=["radford", "radford_b"], seeds=[0, 1], looks=[2, 3], seed_sequence=[0, 1, 2],
                           margin=1.0e-6, alpha=0.001)
    params.write_text(yaml.safe_dump(raw, sort_keys=False, default_flow_style=None))  # seeds: [0, 1]
    result = run([str(Path(sys.executable).parent / "dcgan-lab"), "study"], dst, env)
    lines = [line for line in result.stdout.splitlines() if line.startswith("study: ")]
    assert lines[0] == "study: look at 2 seeds per variant: nothing decided; open: radford_b vs radford", result.stdout
    assert lines[1] == ("study: 1 comparison(s) open: the next declared look, 3 seeds per variant "
                        "(ablation.seeds = [0, 1, 2])")
    assert lines[2].startswith("study: look at 3 seeds per variant: ")
    assert lines[3].startswith("study: done")
    assert yaml.safe_load(params.read_text())["ablation"]["seeds"] == [0, 1, 2]
    ran = re.findall(r"^Running stage '([^']+)'", result.stdout, flags=re.M)
    assert sorted(ran) == sorted(["train@radford_b-0", "train@radford_b-1", "train@radford_b-2", "evaluate@radford_b-0",
                                  "evaluate@radford_b-1", "evaluate@radford_b-2", "report", "report"]), ran
    lock = yaml.safe_load((dst / "dvc.lock").read_text())["stages"]
    assert {"train@radford_b-2", "evaluate@radford_b-2", "train@radford-2"} <= set(lock)
    assert "Running stage" not in run(["dvc", "repro"], dst, env).stdout  # the study is what dvc.lock describes
