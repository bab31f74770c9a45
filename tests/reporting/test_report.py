"""The ablation report on a small synthetic metrics table."""

import json
import math

import numpy as np
import pytest
from scipy import stats

from dcgan_lab.evaluation.results import results_table
from dcgan_lab.reporting.report import compare, outcome, render_markdown, summarize, summary_json

RESULTS = {
    "baseline": {"seed0": {"fid": 8.0, "is_mean": 3.1, "kid_mean": 0.020, "extractor": "x"},
                 "seed1": {"fid": 8.6, "is_mean": 3.0, "kid_mean": 0.024, "extractor": "x"},
                 "seed2": {"fid": 7.9, "is_mean": 3.2, "kid_mean": 0.019, "extractor": "x"}},
    "final": {"seed0": {"fid": 4.8, "is_mean": 4.2, "kid_mean": 0.010, "extractor": "x"},
              "seed1": {"fid": 5.1, "is_mean": 4.1, "kid_mean": 0.011, "extractor": "x"},
              "seed2": {"fid": 4.6, "is_mean": 4.3, "kid_mean": 0.009, "extractor": "x"}},
}
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
