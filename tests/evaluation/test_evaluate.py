"""Scoring the runs with the real torch-fidelity on small sample counts, class coverage by the domain
classifier, the mode-collapse alarm on generators that collapse and on real data, and the scores in each run's
MLflow record (a real sqlite store)."""

import json
import math
from dataclasses import replace

import pytest
import torch

from dcgan_lab.core.config import EvaluateConfig
from dcgan_lab.core.errors import EvaluationError
from dcgan_lab.core.paths import EvalPaths, model_dir
from dcgan_lab.evaluation.classifier import load_classifier
from dcgan_lab.evaluation.evaluate import (
    SCORES, _scores, class_coverage, evaluate_runs, evaluate_variant, log_results, predict_classes,
)
from dcgan_lab.evaluation.results import write_results
from dcgan_lab.gan.checkpoint import save_gan, save_generator
from dcgan_lab.gan.models import Discriminator, DiscriminatorSpec, Generator, GeneratorSpec
from dcgan_lab.gan.sampling import generate, labels_in_proportion
from dcgan_lab.tracking.runs import RunLogger
from helpers import ReplayGenerator, generator_checkpoint, prepared


def test_evaluate_variant_is_finite_repeatable_and_states_its_protocol(mnist, classifier_path, tmp_path):
    _, (test_x, test_y) = mnist
    g = Generator(GeneratorSpec(16, 8, 32, 1, "relu", True, "tanh")).eval()
    cfg = EvaluateConfig(n_samples=200, n_real=300, batch_size=100, is_splits=2, seed=7)
    cpu = torch.device("cpu")
    r1 = evaluate_variant(g, (test_x, test_y), "sha-a", cfg, classifier_path, cpu, cache_root=tmp_path)
    r2 = evaluate_variant(g, (test_x, test_y), "sha-a", cfg, classifier_path, cpu, cache_root=tmp_path)
    assert r1 == r2  # same inputs and seed, second time from the cached real features
    for k in ("fid", "is_mean", "is_std", "kid_mean", "kid_std", "precision", "recall"):
        assert math.isfinite(r1[k]), k
    assert r1["fid"] > 0 and r1["is_mean"] >= 1 and 0 <= r1["precision"] <= 1 and 0 <= r1["recall"] <= 1
    # FID∞ from the FID features, fitted from a quarter of the samples up to all of them: the last FID is `fid`.
    assert math.isfinite(r1["fid_inf"]) and r1["fid_inf_counts"] == [50, 56, 64, 74, 88, 108, 140, 200]
    assert len(r1["fid_inf_fids"]) == 8 and r1["fid_inf_fids"][-1] == r1["fid"]
    assert 1 <= r1["classes_covered"] <= 10 and sum(r1["class_histogram"]) == pytest.approx(1)
    # An unconditional G: its samples are grouped by the classifier's prediction for the per-class FID.
    assert r1["intra_fid_grouping"] == "classifier prediction" and "conditional_accuracy" not in r1
    assert len(r1["intra_fid"]) == 10 and r1["intra_fid_classes"] == sum(f is not None for f in r1["intra_fid"])
    for key in ("intra_precision", "intra_recall", "intra_diversity"):  # grouped alike: null where intra_fid is
        assert len(r1[key]) == 10 and [f is None for f in r1["intra_fid"]] <= [v is None for v in r1[key]], key
    assert r1["collapse_thresholds"] == {"diversity": 0.5, "recall": 0.1} and "collapse" in r1
    assert {k: r1[k] for k in ("extractor", "fid_features", "n_samples", "n_real", "real_split", "seed",
                               "kid_subset_size")} == {
        "extractor": "dcgan-lab-classifier", "fid_features": "features", "n_samples": 200, "n_real": 300,
        "real_split": "test", "seed": 7, "kid_subset_size": 200}
    r3 = evaluate_variant(g, (test_x, test_y), "sha-a", replace(cfg, seed=8), classifier_path, cpu,
                          cache_root=tmp_path)
    assert r3["fid"] != r1["fid"]


def test_a_conditional_generator_is_scored_on_the_real_class_shares_and_per_requested_class(mnist, classifier_path,
                                                                                            tmp_path):
    _, (test_x, test_y) = mnist
    g = Generator(GeneratorSpec(16, 8, 32, 1, "relu", True, "tanh", n_classes=10)).eval()
    cfg = EvaluateConfig(n_samples=200, n_real=300, batch_size=100, is_splits=2, seed=3)
    cpu = torch.device("cpu")
    r = evaluate_variant(g, (test_x, test_y), "sha-c", cfg, classifier_path, cpu, cache_root=tmp_path)
    assert r["intra_fid_grouping"] == "requested label" and len(r["intra_fid"]) == 10
    # 200 samples in the shares of 300 real digits: every class gets >= 2 samples, so every class is scored
    assert r["intra_fid_classes"] == 10 and all(f > 0 for f in r["intra_fid"])
    assert r["intra_fid_mean"] == pytest.approx(sum(r["intra_fid"]) / 10)
    assert 0 <= r["conditional_accuracy"] <= 1 and math.isfinite(r["fid"])
    # What it asked for: the samples of the real shares, class by class, seeded as the evaluation seeds them.
    labels = labels_in_proportion(200, torch.bincount(test_y[:300], minlength=10))
    preds = predict_classes(generate(g, 200, 3, 100, cpu, labels=labels), load_classifier(classifier_path), cpu)
    assert r["conditional_accuracy"] == pytest.approx(float((preds == labels).double().mean()))
    json.dumps(r, allow_nan=False)  # eval.json: nulls, never NaN


def test_cached_real_features_are_not_reused_for_other_data(mnist, classifier_path, tmp_path):
    """The cache is keyed by the split's hash: a different real set under another hash gives another FID."""
    _, (test_x, test_y) = mnist
    g = Generator(GeneratorSpec(16, 8, 32, 1, "relu", True, "tanh")).eval()
    cfg = EvaluateConfig(n_samples=200, n_real=300, batch_size=100, is_splits=2)
    cpu = torch.device("cpu")
    first = evaluate_variant(g, (test_x, test_y), "sha-a", cfg, classifier_path, cpu, cache_root=tmp_path)
    shifted = (test_x[300:], test_y[300:])
    second = evaluate_variant(g, shifted, "sha-b", cfg, classifier_path, cpu, cache_root=tmp_path)
    assert second["fid"] != first["fid"]
    names = {p.name.split("-dcgan-lab-classifier-")[0] for p in tmp_path.iterdir()}
    assert len(names) == 2  # one cache entry per real set (features, logits and FID statistics each)


def test_class_coverage_sees_mode_collapse(mnist, classifier_path):
    _, (test_x, test_y) = mnist
    model = load_classifier(classifier_path)
    cpu = torch.device("cpu")
    varied = class_coverage(predict_classes(test_x[:1000], model, cpu), test_y, 10)
    collapsed = class_coverage(predict_classes(test_x[:1].expand(1000, -1, -1, -1), model, cpu), test_y, 10)
    assert varied["classes_covered"] == 10 and varied["class_kl_real"] < 0.1
    assert collapsed["classes_covered"] == 1
    assert collapsed["class_kl_uniform"] == pytest.approx(math.log(10), rel=1e-6)


def test_class_coverage_on_known_predictions():
    preds = torch.tensor([0, 0, 1, 1])  # half class 0, half class 1, of 4 classes
    r = class_coverage(preds, torch.tensor([0, 1, 2, 3]), 4)
    assert r["classes_covered"] == 2 and r["class_histogram"] == [0.5, 0.5, 0.0, 0.0]
    assert r["class_kl_uniform"] == pytest.approx(math.log(2)) and r["class_kl_real"] == pytest.approx(math.log(2))


def test_every_run_of_the_models_root_is_scored_with_its_best_and_ema_generators(mnist, classifier_path, tmp_path):
    _, (test_x, test_y) = mnist
    cfg = EvaluateConfig(n_samples=100, n_real=200, batch_size=100, is_splits=2)
    g_spec = GeneratorSpec(16, 8, 32, 1, "relu", True, "tanh")
    d = Discriminator(DiscriminatorSpec(8, 32, 1, True, False, "conv"))
    models = tmp_path / "models"
    torch.manual_seed(0)
    save_gan(model_dir(models, "final", 0).checkpoint, Generator(g_spec), d, ema=Generator(g_spec))
    save_generator(model_dir(models, "final", 0).best, Generator(g_spec), steps=10, fid_quick=1.0)
    save_gan(model_dir(models, "final", 1).checkpoint, Generator(g_spec), d)  # no best, no EMA
    results = evaluate_runs(cfg, torch.device("cpu"), ["final"], [0, 1], (test_x, test_y), "sha-e", classifier_path,
                            models)
    assert list(results) == ["final"] and list(results["final"]) == ["seed0", "seed1"]
    r0, r1 = results["final"]["seed0"], results["final"]["seed1"]
    assert r0["best_step"] == 10 and math.isfinite(r0["best_fid"]) and math.isfinite(r0["ema_fid"])
    assert r0["ema_fid_delta"] == pytest.approx(r0["ema_fid"] - r0["fid"])
    assert all(math.isfinite(r0[k]) for k in ("fid_inf", "best_fid_inf", "ema_fid_inf"))
    assert [k for k in r0 if k.startswith(("best_", "ema_"))] == [  # eval.json's keys, in this order
        "best_step", "best_fid", "best_fid_inf", "best_is_mean", "best_kid_mean", "best_precision", "best_recall",
        "best_intra_precision_mean", "best_intra_recall_mean", "best_intra_diversity_mean", "best_collapse",
        "ema_fid", "ema_fid_inf", "ema_is_mean", "ema_kid_mean", "ema_precision", "ema_recall",
        "ema_intra_precision_mean", "ema_intra_recall_mean", "ema_intra_diversity_mean", "ema_fid_delta",
        "ema_collapse"]
    assert {"fid_inf", "best_fid_inf", "ema_fid_inf"} <= _scores(r0).keys()  # what goes to MLflow
    assert not any(k.startswith(("best_", "ema_")) for k in r1)
    out = EvalPaths(tmp_path / "metrics")
    write_results(results, out)
    assert json.loads(out.results.read_text()) == json.loads(json.dumps(results))
    header = out.table.read_text().splitlines()[0]
    assert header.startswith("variant,seed,fid,") and "intra_fid_mean" in header.split(",")


def test_mlflow_gets_every_score_of_the_metric_table_and_its_spread():
    """The MLflow metric names (besides intra_fid_class<k>): core/metrics.py's keys, and is_std and kid_std."""
    assert sorted(SCORES) == sorted([
        "fid", "fid_inf", "is_mean", "is_std", "kid_mean", "kid_std", "precision", "recall", "classes_covered",
        "class_kl_uniform", "class_kl_real", "best_fid", "best_fid_inf", "best_is_mean", "best_kid_mean",
        "best_precision", "best_recall", "ema_fid", "ema_fid_inf", "ema_is_mean", "ema_kid_mean", "ema_precision",
        "ema_recall", "ema_fid_delta", "intra_fid_mean", "conditional_accuracy", "intra_precision_mean",
        "intra_recall_mean", "intra_diversity_mean", "best_intra_precision_mean", "best_intra_recall_mean",
        "best_intra_diversity_mean", "ema_intra_precision_mean", "ema_intra_recall_mean", "ema_intra_diversity_mean",
        *(f"{prefix}second_{k}" for prefix in ("", "best_", "ema_")  # the second feature space's
          for k in ("fid", "kid_mean", "is_mean", "precision", "recall"))])
    r = {"fid": 4.0, "is_std": 0.1, "precision": float("nan"), "intra_fid": [1.0, None], "extractor": "x"}
    assert _scores(r) == {"fid": 4.0, "is_std": 0.1, "intra_fid_class0": 1.0}  # finite numbers only


REPLAY = EvaluateConfig(n_samples=200, n_real=300, batch_size=100, is_splits=2)  # real: test[:300]


def test_a_generator_of_one_fixed_image_per_class_is_flagged_though_its_precision_is_perfect(mnist, classifier_path,
                                                                                             tmp_path):
    """What the broken cgan did: every sample of a class is the same (here a real digit of that class)."""
    _, (test_x, test_y) = mnist
    per_class = torch.stack([test_x[int((test_y == k).nonzero()[0])] for k in range(10)])
    r = evaluate_variant(ReplayGenerator(per_class, n_classes=10), (test_x, test_y), "sha-t", REPLAY,
                         classifier_path, torch.device("cpu"), cache_root=tmp_path)
    assert r["intra_fid_grouping"] == "requested label" and max(r["intra_diversity"]) < 1e-3
    assert r["recall"] < 0.1 and r["precision"] > 0.9  # real digits, 10 of them: fidelity without variety
    assert r["collapse"].startswith("class ")
    assert " diversity ratio 0 < 0.5 (and 9 more classes); recall " in r["collapse"]


def test_a_generator_of_one_image_for_everything_is_flagged(mnist, classifier_path, tmp_path):
    _, (test_x, test_y) = mnist
    r = evaluate_variant(ReplayGenerator(test_x[:1]), (test_x, test_y), "sha-t", REPLAY, classifier_path,
                         torch.device("cpu"), cache_root=tmp_path)
    (scored,) = [k for k, v in enumerate(r["intra_diversity"]) if v is not None]  # every sample in one class
    assert r["classes_covered"] == 1 and r["intra_diversity"][scored] < 1e-3
    assert r["collapse"] == f"class {scored} diversity ratio 0 < 0.5; recall {r['recall']:.3g} < 0.1"


def test_the_real_test_split_scored_as_samples_is_not_flagged(mnist, classifier_path, tmp_path):
    _, (test_x, test_y) = mnist
    r = evaluate_variant(ReplayGenerator(test_x[300:500]), (test_x, test_y), "sha-t", REPLAY, classifier_path,
                         torch.device("cpu"), cache_root=tmp_path)  # 200 other test digits against test[:300]
    assert r["collapse"] is None and r["classes_covered"] == 10
    assert all(0.75 < v < 1.33 for v in r["intra_diversity"]), r["intra_diversity"]
    assert r["recall"] > 0.5 and r["intra_recall_mean"] > 0.5, (r["recall"], r["intra_recall"])


def test_a_collapsed_run_is_one_warning_per_flagged_generator_and_its_mlflow_tag(mnist, classifier_path, tmp_path,
                                                                                 monkeypatch, capsys):
    """A G with every weight zero draws one grey image; so does its EMA. The stage says so on stderr, once for
    each, naming the run; eval.json and the run's MLflow tag `collapse` carry the same reasons."""
    _, (test_x, test_y) = mnist
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    g_spec = GeneratorSpec(16, 8, 32, 1, "relu", True, "tanh")
    flat = [Generator(g_spec) for _ in range(2)]
    for p in (p for g in flat for p in g.parameters()):
        torch.nn.init.zeros_(p)
    models = tmp_path / "models"
    run = model_dir(models, "cgan", 3)
    save_gan(run.checkpoint, flat[0], Discriminator(DiscriminatorSpec(8, 32, 1, True, False, "conv")), ema=flat[1])
    RunLogger.start("cgan", 3, {}, {}).save_run_file(run.mlflow_run)
    results = evaluate_runs(REPLAY, torch.device("cpu"), ["cgan"], [3], (test_x, test_y), "sha-z", classifier_path,
                            models)
    r = results["cgan"]["seed3"]
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: mode collapse in cgan seed 3, last generator: {r['collapse']}",
                        f"warning: mode collapse in cgan seed 3, EMA generator: {r['ema_collapse']}"]
    assert " diversity ratio 0 < 0.5; recall " in r["collapse"] and "best_collapse" not in r  # no best.pt
    log_results(results, models, {})
    tags = RunLogger.resume(run.mlflow_run, "cgan", 3, {}).client.get_run(
        json.loads(run.mlflow_run.read_text())["run_id"]).data.tags
    assert tags["collapse"] == f"last: {r['collapse']}; EMA: {r['ema_collapse']}"
    assert {"intra_precision_mean", "intra_diversity_mean", "ema_intra_diversity_mean"} <= _scores(r).keys()


def test_a_run_is_scored_once_per_protocol_even_if_a_rescore_differs_in_the_last_bits(tmp_path, monkeypatch):
    """DVC experiments reuse the run of an unchanged variant and evaluate it again, maybe with another thread
    count: the scores must not pile up at step 0. Another protocol (or evaluation code) scores again."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    models = tmp_path / "models"
    run = model_dir(models, "final", 0)
    run.path.mkdir(parents=True)
    generator_checkpoint(run.checkpoint, 0)
    logger = RunLogger.start("final", 0, {}, {})
    logger.save_run_file(run.mlflow_run)
    protocol = dict(extractor="dcgan-lab-classifier", fid_features="features", n_samples=100, n_real=100,
                    real_split="test", seed=0, kid_subset_size=50, extractor_test_accuracy=0.99)

    def results(fid, **changes):
        return {"final": {"seed0": {"fid": fid, "is_mean": 2.0, **protocol, **changes}}}

    per_class = dict(intra_fid=[1.0, None, 2.0], intra_fid_mean=1.5, intra_fid_classes=2,
                     intra_fid_grouping="requested label", conditional_accuracy=0.8)
    log_results(results(4.0, **per_class), models, {})
    assert "collapse" not in logger.client.get_run(logger.run_id).data.tags  # a result without the alarm: no tag
    per_class["collapse"] = None
    log_results(results(4.0 + 1e-12, **per_class), models, {})  # a rescore, last bits differ
    history = logger.client.get_metric_history(logger.run_id, "fid")
    assert [(m.step, m.value) for m in history] == [(0, 4.0)]
    logged = logger.client.get_run(logger.run_id).data
    assert {k: v for k, v in logged.metrics.items() if "intra" in k or "conditional" in k} == {
        "intra_fid_mean": 1.5, "intra_fid_class0": 1.0, "intra_fid_class2": 2.0, "conditional_accuracy": 0.8}
    assert logged.tags["eval.intra_fid_grouping"] == "requested label" and logged.tags["collapse"] == "none"
    log_results(results(3.5, n_samples=200, intra_fid_mean=None), models, {})  # another protocol: scored again
    assert sorted(m.value for m in logger.client.get_metric_history(logger.run_id, "fid")) == [3.5, 4.0]
    assert logger.client.get_run(logger.run_id).data.tags["eval.n_samples"] == "200"
    assert logger.client.get_run(logger.run_id).data.tags["eval.extractor_test_accuracy"] == "0.99"
    assert json.loads(run.mlflow_run.read_text())["run_id"] == logger.run_id
