"""The ablation report on a small synthetic metrics table: the declared design first, then the primary verdicts,
then exploratory comparisons that never name a winner."""

import copy
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dcgan_lab.core.config import AblationConfig
from dcgan_lab.core.errors import ConfigError, DataError
from dcgan_lab.core.paths import EvalPaths, ReportPaths
from dcgan_lab.evaluation.results import results_table
from dcgan_lab.reporting.report import Study, per_class_section, render_markdown, report_text, summary_json, write_report
from helpers import EVAL_RESULTS, extractor_validation

RESULTS = copy.deepcopy(EVAL_RESULTS)  # tests may add keys to their copy
VARIANTS = ["baseline", "final"]  # baseline is the control
FID = AblationConfig(variants=tuple(VARIANTS), primary="fid", margin=1.0, looks=None)  # a fixed design: seeds 0-2


def study(results=RESULTS, ablation=FID) -> Study:
    return Study(results_table(results), ablation, VARIANTS)


def test_confidence_interval_is_the_t_interval():
    row = study().summary.query("variant == 'baseline' and metric == 'fid'").iloc[0]
    x = np.array([8.0, 8.6, 7.9])
    low, high = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert row["mean"] == pytest.approx(x.mean()) and row["ci95"] == pytest.approx((high - low) / 2)


def test_the_report_opens_with_the_declared_design_then_one_verdict_per_primary_comparison():
    md = render_markdown(study(), {"extractor": "x", "n_samples": 10})
    assert md.startswith("# Ablation report\n\n## Design (declared in params.yaml `ablation:` before the runs)\n\n"
                         "- Primary endpoint: FID (`fid`), lower is better.\n- Equivalence margin Δ = 1 (FID units).\n"
                         "- Family-wise alpha = 0.05 over the m = 1 comparisons below")
    assert "- Seeds: 0, 1, 2 (3 per variant)." in md
    verdicts = md.split("## Verdicts (FID)\n\n")[1].split("\n\n")[0].splitlines()
    assert verdicts == [f"- {v.sentence}" for v in study().verdicts] and verdicts[0].startswith("- final vs baseline: ")
    assert "final better on FID: −3.3" in verdicts[0] and "95% simultaneous interval, paired t" in verdicts[0]
    assert "Wilcoxon's signed-rank test is not shown: with 3 seeds its smallest possible p is 0.25" in md
    assert "## How it was measured\n\nextractor = x, n_samples = 10." in md


def test_the_mode_collapse_line_opens_the_report_before_the_design():
    line = "**Mode collapse flagged** in 1 of 6 scored generators (alarm: recall below 0.1): final seed 0 last (...)."
    md = render_markdown(study(), {}, alarm=line)
    assert md.startswith(f"# Ablation report\n\n{line}\n\n## Design (declared in params.yaml `ablation:` before")


def test_a_failed_feature_space_check_is_flagged_first_and_every_check_is_stated_under_how_it_was_measured():
    md = render_markdown(study(), {"extractor": "x"}, validation=extractor_validation({"gaussian_noise": 1.0, "swirl": 0.5}))
    assert md.startswith("# Ablation report\n\n**Feature-space warning:** `dcgan-lab-classifier` failed fid_rises")
    measured = md.split("## How it was measured\n\n")[1]
    assert measured.startswith("extractor = x.\n\nFeature space `dcgan-lab-classifier` checked (validate_extractor")
    assert "the worst swirl (ρ 0.5)" in measured
    assert "Feature-space warning" not in render_markdown(study(), {}, validation=extractor_validation({"gaussian_noise": 1.0}))


def test_the_within_class_means_are_columns_and_precision_recall_ones_exploratory_comparisons():
    results = {v: {s: {**r, "intra_precision_mean": 0.7, "intra_recall_mean": r["fid"] / 20,
                       "intra_diversity_mean": 0.9} for s, r in by_seed.items()} for v, by_seed in RESULTS.items()}
    s = study(results)
    md = render_markdown(s, {})
    header = next(line for line in md.splitlines() if line.startswith("| variant | seeds |"))
    assert header.endswith("| mean intra-precision ↑ | mean intra-recall ↑ | mean diversity ratio ↑ |")
    compared = {c.metric for c in s.exploratory}
    assert {"intra_precision_mean", "intra_recall_mean"} <= compared and "intra_diversity_mean" not in compared


def test_secondary_metrics_are_exploratory_and_never_worded_better():
    md = render_markdown(study(), {})
    exploratory = md.split("## Exploratory comparisons (no verdicts)")[1].split("## How it was measured")[0]
    assert "| IS | final | baseline | 3.10 | 4.20 |" not in exploratory  # variant first: final's mean first
    assert "| IS | final | baseline | 4.20 | 3.10 | +1.1 [1.1, 1.1] | paired t |" in exploratory  # constant diff
    assert "| KID | final | baseline |" in exploratory and "3/3 final (≥ 0.37)" in exploratory
    assert " better" not in exploratory.replace('worded "better"', "")


def test_single_seed_says_no_test_is_possible_and_the_json_is_strict():
    one = {v: {"seed0": r["seed0"]} for v, r in RESULTS.items()}
    s = study(one)
    assert s.summary["ci95"].isna().all() and [v.verdict for v in s.verdicts] == ["n/a"]
    md = render_markdown(s, {})
    assert "a test needs at least 2 seeds per variant" in md and "| baseline | 1 | 8 |" in md
    metrics = summary_json(s)
    assert metrics["final"] == {"n_seeds": 1, "fid_mean": 4.8, "kid_mean": 0.01, "is_mean": 4.2}
    json.dumps(metrics, allow_nan=False)  # DVC metrics: no NaN anywhere


def test_ablation_json_stores_the_design_and_each_verdicts_fields_and_sentence():
    s = study()
    metrics = summary_json(s)
    assert metrics["design"] == {"primary": "fid", "margin": 1.0, "alpha": 0.05, "comparisons": 1, "level": 0.05,
                                 "correction": "Bonferroni", "control": "baseline", "seeds": [0, 1, 2]}
    entry = metrics["verdicts"]["final_vs_baseline"]
    assert (entry["verdict"], entry["winner"], entry["outcome"], entry["test"]) == (
        "better", "final", "final better", "paired t")
    assert entry["sentence"] == s.verdicts[0].sentence and entry["favour"] == {
        "side": "final", "k": 3, "n": 3, "share_low": pytest.approx(0.368403)}
    assert entry["ci_high"] < 0 and entry["p_bonferroni"] < 0.05
    assert metrics["exploratory"]["final_vs_baseline"]["is"]["sentence"].startswith(
        "final vs baseline, IS (exploratory): +1.1 [1.1, 1.1] (95% interval, not adjusted, paired t); 3 of 3 seeds")
    assert report_text(metrics) == [
        "primary fid, margin 1, family-wise alpha 0.05 over 1 comparisons (Bonferroni), seeds [0, 1, 2]",
        entry["sentence"]]


def test_a_primary_the_results_do_not_have_is_one_config_error():
    with pytest.raises(ConfigError, match=r"^ablation\.primary: 'ema_fid' is not among the evaluated scores .*; "
                                          r"allowed here: fid, kid_mean, is_mean$"):
        study(ablation=AblationConfig(variants=tuple(VARIANTS)))


def with_per_class(results: dict, grouping: dict[str, str]) -> dict:
    """RESULTS with per-class FIDs of 3 classes (class 2 unscored in seed 0) and the grouping of each variant."""
    out = {}
    for variant, by_seed in results.items():
        out[variant] = {}
        for i, (seed, r) in enumerate(by_seed.items()):
            fids = [r["fid"] + 1, r["fid"] + 2 + i, None if i == 0 else r["fid"] + 3]
            scored = [f for f in fids if f is not None]
            out[variant][seed] = {**r, "intra_fid": fids, "intra_fid_mean": sum(scored) / len(scored),
                                  "intra_fid_classes": len(scored), "intra_fid_grouping": grouping[variant]}
            if grouping[variant] == "requested label":
                out[variant][seed]["conditional_accuracy"] = 0.9
    return out


def test_the_report_shows_mean_intra_fid_and_a_per_class_section_saying_how_samples_were_grouped():
    results = with_per_class(RESULTS, {"baseline": "classifier prediction", "final": "requested label"})
    s = study(results)
    md = render_markdown(s, {}, per_class=per_class_section(results, VARIANTS))
    header = next(line for line in md.splitlines() if line.startswith("| variant | seeds |"))
    assert header.startswith("| variant | seeds | FID ↓ | mean intra-FID ↓ |")
    assert header.endswith("| conditional accuracy ↑ |")
    # baseline seeds' intra-FID means: (9 + 10) / 2, (9.6 + 11.6 + 11.6) / 3, (8.9 + 11.9 + 10.9) / 3
    assert "| baseline | 3 | 8.167 ± 0.94 | 10.33 ± 1.8 | 0.021 ± 0.0066 | 3.1 ± 0.25 | – |" in md
    assert "| final | 3 | 4.833 ± 0.63 | 7 ± 1.5 | 0.01 ± 0.0025 | 4.2 ± 0.25 | 0.9 ± 0 |" in md
    section = md.split("## Per-class FID\n\n")[1]
    assert "grouped by the label they were generated for" in section and "the class the domain classifier" in section
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    assert rows[0] == "| variant | grouped by | scored | mean ↓ | class 0 | class 1 | class 2 |"
    # class 0: fid + 1 in every seed; class 1: fid + 2 + i; class 2: unscored in seed 0, fid + 3 after
    assert rows[2] == "| baseline | classifier prediction | 2–3 | 10.33 | 9.167 | 11.17 | 11.25 |"
    assert rows[3] == "| final | requested label | 2–3 | 7 | 5.833 | 7.833 | 7.85 |"
    assert any(c.metric == "intra_fid_mean" for c in s.exploratory)
    assert "| mean intra-FID | final | baseline |" in md
    metrics = summary_json(s)
    assert {"intra_fid_mean", "intra_fid_ci95", "intra_fid_sd"} <= metrics["final"].keys()
    assert "intra_fid" in metrics["exploratory"]["final_vs_baseline"]


def test_fid_verdicts_are_the_same_with_per_class_scores():
    plain_md = render_markdown(study(), {})
    assert "Per-class FID" not in plain_md and "intra-FID" not in plain_md
    results = with_per_class(RESULTS, {"baseline": "classifier prediction", "final": "classifier prediction"})
    md = render_markdown(study(results), {}, per_class=per_class_section(results, VARIANTS))

    def verdict_lines(text):
        return [line for line in text.splitlines() if line.startswith("- ")]

    assert verdict_lines(md) == verdict_lines(plain_md)  # the primary verdicts: unchanged, none added
    assert "conditional accuracy" not in md  # no conditional variant


def test_a_variant_without_a_metric_shows_a_dash_not_nan():
    results = {"baseline": {s: {k: v for k, v in r.items() if k != "kid_mean"} for s, r in RESULTS["baseline"].items()},
               "final": RESULTS["final"]}
    md = render_markdown(study(results), {})
    assert "nan" not in md and "| baseline | 3 | 8.167 ± 0.94 | – |" in md


def _write_runs(metrics, params, run):
    """Per-run score files as the evaluate@ stages write them, run(variant, seed) -> scores."""
    for v in params.ablation.variants:
        for seed in params.ablation.seeds:
            path = EvalPaths(metrics).run(v, seed)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(run(v, seed)))


def test_a_run_file_missing_or_from_an_older_evaluate_names_its_stage_and_nothing_is_written(params, tmp_path):
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    first, seed = params.ablation.variants[0], params.ablation.seeds[0]
    report = lambda: write_report(params, EvalPaths(metrics), tmp_path / "train", tmp_path / "models",  # noqa: E731
                                  ReportPaths(metrics, tmp_path / "plots"), {})
    with pytest.raises(DataError, match=rf"^.*eval/{first}/seed{seed}\.json: not found; run "
                                        rf"`dvc repro evaluate@{first}-{seed}` first$"):
        report()
    _write_runs(metrics, params, lambda v, s: RESULTS["baseline"]["seed0"])
    with pytest.raises(DataError, match=rf"^.*eval/{first}/seed{seed}\.json: written by an older evaluate \(no "
                                        rf"per-class FID, intra_fid\); rerun `dvc repro evaluate@{first}-{seed}`$"):
        report()
    assert [p.name for p in metrics.iterdir()] == ["eval"] and not (tmp_path / "plots").exists()
    _write_runs(metrics, params, lambda v, s: {**RESULTS["baseline"]["seed0"], "intra_fid": []})
    with pytest.raises(DataError, match=rf"^.*eval/{first}/seed{seed}\.json: written by an older evaluate \(no "
                                        rf"mode-collapse flag, collapse\); rerun `dvc repro evaluate@{first}-{seed}`$"):
        report()
    assert [p.name for p in metrics.iterdir()] == ["eval"] and not (tmp_path / "plots").exists()


def test_log_report_tags_the_study_on_every_run_and_logs_each_variants_interval(tmp_path, monkeypatch):
    """What the MLflow UI groups and charts on, in a real sqlite store: every member run tagged with its
    variant and seed (by train, as RunLogger.start does) and its study (by the report), and the ablation run
    with the study, each variant's mean and 95% interval of the primary, and the verdicts."""
    from dcgan_lab.reporting.report import log_report
    from dcgan_lab.tracking.runs import RunLogger
    from dcgan_lab.tracking.store import experiment_id, open_client, tracking_uri

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")  # this test's own store
    run_files = []
    for v in VARIANTS:
        for s in (0, 1, 2):
            run_files.append(tmp_path / f"{v}-{s}.json")
            RunLogger.start(v, s, {"variant.name": v, "seed": s}, {}, root=tmp_path).save_run_file(run_files[-1])
    summary = summary_json(study())
    ablation = log_report(summary, run_files, [], {"study": "0123456789"})

    client = open_client(tracking_uri(tmp_path))
    members = client.search_runs([experiment_id(client, tmp_path)], "tags.ablation_run_id != ''")
    assert sorted((r.data.tags["variant"], r.data.tags["seed"], r.data.tags["study"]) for r in members) == [
        (v, str(s), "0123456789") for v in VARIANTS for s in (0, 1, 2)]
    run = client.get_run(ablation).data
    assert run.tags["study"] == "0123456789" and run.tags["verdict.final_vs_baseline"] == "final better"
    row = study().summary.query("variant == 'baseline' and metric == 'fid'").iloc[0]  # the report's t-interval
    assert (run.metrics["baseline.fid_ci_low"], run.metrics["baseline.fid_ci_high"]) == pytest.approx(
        (row["mean"] - row["ci95"], row["mean"] + row["ci95"]), abs=1e-5)
    for v in VARIANTS:
        mean, half = summary[v]["fid_mean"], summary[v]["fid_ci95"]
        assert [run.metrics[f"{v}.fid_{k}"] for k in ("mean", "ci_low", "ci_high")] == pytest.approx(
            [mean, mean - half, mean + half])
    assert not any(k.endswith(("kid_ci_low", "is_ci_low")) for k in run.metrics)  # the primary's interval only


def sequential_study(n_seeds: int) -> Study:
    """baseline vs final on the first n_seeds of the default design's seeds 10-19, a difference of about 0 with a
    wide spread: open at the first look."""
    swing = [1.5, -1.4, 1.2, -1.6, 0.9, -1.1, 1.3, -0.8, 1.0, -1.2]
    rows = [{"variant": v, "seed": 10 + i, "fid": 6.0 + 0.4 * i + (swing[i] if v == "final" else 0.0),
             "kid_mean": 0.02} for i in range(n_seeds) for v in VARIANTS]
    ablation = AblationConfig(variants=tuple(VARIANTS), primary="fid", seeds=tuple(range(10, 10 + n_seeds)))
    return Study(pd.DataFrame(rows), ablation, VARIANTS)  # looks [5, 10], the default


def test_at_5_of_10_seeds_a_comparison_still_open_says_so_and_names_the_next_look():
    s = sequential_study(5)
    (v,) = s.verdicts
    assert (v.verdict, v.look, v.next_look) == ("open", 1, 10)
    md = render_markdown(s, {})
    design = md.split("## Verdicts")[0]
    assert "- Sequential design (`ablation.looks`): looks at 5 and 10 seeds per variant" in design
    assert f"one nominal level, {s.design.level:.2g} two-sided for \"better\"" in design
    assert "- Look 1 of 2, 5 seeds (10–14): decided none; open: final vs baseline." in design
    assert ("- Next look at 10 seeds per variant: the open comparisons are tested there once seeds 15–19 of "
            "`ablation.seed_sequence` have run too") in design
    assert "The primary family's error rate is controlled over all looks" in design
    assert f"- {v.sentence}" in md
    assert v.sentence.startswith("final vs baseline at look 1 of 2: open with 5 seeds on FID")
    assert v.sentence.endswith("; next look at 10 seeds per variant")
    assert "| final vs baseline | open: next look at 10 seeds | " in md
    metrics = summary_json(s)
    assert (metrics["design"]["looks"], metrics["design"]["level"]) == ([5, 10], round(s.design.level, 6))
    assert metrics["looks"] == {"look_1": {"n": 5, "seeds": [10, 11, 12, 13, 14], "level": round(s.design.level, 6),
                                           "tost_level": round(s.design.tost_level, 6), "decided": [],
                                           "open": ["final_vs_baseline"], "inconclusive": []}}
    entry = metrics["verdicts"]["final_vs_baseline"]
    assert (entry["outcome"], entry["look"], entry["seeds_used"]) == ("open: next look at 10 seeds", 1,
                                                                      [10, 11, 12, 13, 14])
    assert report_text(metrics)[0].endswith(f"; looks at [5, 10] seeds, every look at the boundary "
                                            f"{s.design.level:.2g}")
    json.dumps(metrics, allow_nan=False)


def test_seeds_short_of_the_next_look_are_not_used_and_before_the_first_every_comparison_is_open():
    seven = render_markdown(sequential_study(7), {})
    assert "- Seeds 15, 16 are run but no verdict uses them: short of the next look's 10 (the exploratory" in seven
    assert "seeds 17–19 of `ablation.seed_sequence`" in seven
    s = sequential_study(3)
    assert [v.verdict for v in s.verdicts] == ["open"] and summary_json(s)["looks"] == {}
    md = render_markdown(s, {})
    assert "- No look reached yet: every comparison is open." in md and "Wilcoxon" not in md
    assert "no look reached yet, the first is at 5 seeds per variant" in md
