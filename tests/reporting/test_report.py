"""The ablation report on a small synthetic metrics table."""

import copy
import json
import math

import numpy as np
import pytest
from scipy import stats

from dcgan_lab.evaluation.results import results_table
from dcgan_lab.reporting.report import (
    compare, outcome, per_class_section, render_markdown, summarize, summary_json,
)
from helpers import EVAL_RESULTS

RESULTS = copy.deepcopy(EVAL_RESULTS)  # tests may add keys to their copy
VARIANTS = ["baseline", "final"]  # baseline is the control


def test_confidence_interval_is_the_t_interval():
    summary = summarize(results_table(RESULTS))
    row = summary[(summary.variant == "baseline") & (summary.metric == "fid")].iloc[0]
    x = np.array([8.0, 8.6, 7.9])
    low, high = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert row["mean"] == pytest.approx(x.mean()) and row["ci95"] == pytest.approx((high - low) / 2)


def test_welch_p_value_matches_scipy_and_says_final_differs():
    comparisons = compare(results_table(RESULTS), VARIANTS)
    (fid,) = [c for c in comparisons if c.metric == "fid"]
    expected = stats.ttest_ind([8.0, 8.6, 7.9], [4.8, 5.1, 4.6], equal_var=False).pvalue
    assert (fid.other, fid.variant) == ("baseline", "final") and fid.p_welch == pytest.approx(expected)
    assert fid.p_welch < 0.01
    assert fid.diff == pytest.approx(np.mean([4.8, 5.1, 4.6]) - np.mean([8.0, 8.6, 7.9]))
    assert outcome(fid) == "final better"  # lower FID, adjusted p < 0.05


def test_markdown_is_readable_alone():
    table = results_table(RESULTS)
    md = render_markdown(summarize(table), compare(table, VARIANTS), {"extractor": "x", "n_samples": 10})
    assert "## How it was measured\n\nextractor = x, n_samples = 10." in md
    assert "| baseline | 3 | 8.167 ± " in md and "| final | baseline | FID |" in md
    assert "a test needs at least 2 seeds" not in md


def test_single_seed_says_no_test_is_possible():
    one = {v: {"seed0": r["seed0"]} for v, r in RESULTS.items()}
    table = results_table(one)
    summary, comparisons = summarize(table), compare(table, VARIANTS)
    assert summary["ci95"].isna().all() and all(math.isnan(c.p_welch) for c in comparisons)
    md = render_markdown(summary, comparisons, {})
    assert "a test needs at least 2 seeds per variant" in md and "| baseline | 1 | 8 |" in md
    metrics = summary_json(summary, comparisons)
    assert metrics["final"] == {"n_seeds": 1, "fid_mean": 4.8, "kid_mean": 0.01, "is_mean": 4.2}
    json.dumps(metrics, allow_nan=False)  # DVC metrics: no NaN anywhere


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
    table = results_table(results)
    summary, comparisons = summarize(table), compare(table, VARIANTS)
    md = render_markdown(summary, comparisons, {}, per_class=per_class_section(results, VARIANTS))
    header = next(line for line in md.splitlines() if line.startswith("| variant | seeds |"))
    assert header.startswith("| variant | seeds | FID ↓ | mean intra-FID ↓ |")
    assert header.endswith("| conditional accuracy ↑ |")
    # baseline seeds' intra-FID means: (9 + 10) / 2, (9.6 + 11.6 + 11.6) / 3, (8.9 + 11.9 + 10.9) / 3
    assert "| baseline | 3 | 8.167 ± 0.94 | 10.33 ± 1.8 | 0.021 ± 0.0066 | 3.1 ± 0.25 | – |" in md
    assert "| final | 3 | 4.833 ± 0.63 | 7 ± 1.5 | 0.01 ± 0.0025 | 4.2 ± 0.25 | 0.9 ± 0 |" in md
    section = md.split("## Per-class FID\n\n")[1].split("## Every comparison")[0]
    assert "grouped by the label they were generated for" in section and "the class the domain classifier" in section
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    assert rows[0] == "| variant | grouped by | scored | mean ↓ | class 0 | class 1 | class 2 |"
    # class 0: fid + 1 in every seed; class 1: fid + 2 + i; class 2: unscored in seed 0, fid + 3 after
    assert rows[2] == "| baseline | classifier prediction | 2–3 | 10.33 | 9.167 | 11.17 | 11.25 |"
    assert rows[3] == "| final | requested label | 2–3 | 7 | 5.833 | 7.833 | 7.85 |"
    assert any(c.metric == "intra_fid_mean" for c in comparisons)
    assert "| final | baseline | mean intra-FID |" in md
    metrics = summary_json(summary, comparisons)
    assert {"intra_fid_mean", "intra_fid_ci95", "intra_fid_sd"} <= metrics["final"].keys()
    assert metrics["verdicts"]["final_vs_baseline"]["intra_fid"] == "final better"


def test_fid_verdicts_are_the_same_with_per_class_scores_and_runs_without_them_have_no_section():
    plain = results_table(RESULTS)
    plain_md = render_markdown(summarize(plain), compare(plain, VARIANTS), {}, per_class=per_class_section(
        RESULTS, VARIANTS))
    assert "Per-class FID" not in plain_md and "intra-FID" not in plain_md
    results = with_per_class(RESULTS, {"baseline": "classifier prediction", "final": "classifier prediction"})
    table = results_table(results)
    md = render_markdown(summarize(table), compare(table, VARIANTS), {}, per_class=per_class_section(
        results, VARIANTS))

    def verdict_lines(text):
        return [line for line in text.splitlines() if line.startswith("- ")]

    assert verdict_lines(md) == verdict_lines(plain_md)  # FID, KID and IS verdicts: unchanged, none added
    assert "conditional accuracy" not in md  # no conditional variant


def test_a_variant_without_a_metric_shows_a_dash_not_nan():
    results = {"baseline": {s: {k: v for k, v in r.items() if k != "kid_mean"} for s, r in RESULTS["baseline"].items()},
               "final": RESULTS["final"]}
    table = results_table(results)
    md = render_markdown(summarize(table), compare(table, VARIANTS), {})
    assert "nan" not in md and "| baseline | 3 | 8.167 ± 0.94 | – |" in md
