"""The ablation report on a small synthetic metrics table."""

import math

import numpy as np
import pytest
from scipy import stats

from dcgan_lab.report import ablation_table, pairwise_tests, render_markdown, summarize, summary_metrics

RESULTS = {
    "baseline": {"seed0": {"fid": 8.0, "is_mean": 3.1, "kid_mean": 0.020, "extractor": "x"},
                 "seed1": {"fid": 8.6, "is_mean": 3.0, "kid_mean": 0.024, "extractor": "x"},
                 "seed2": {"fid": 7.9, "is_mean": 3.2, "kid_mean": 0.019, "extractor": "x"}},
    "final": {"seed0": {"fid": 4.8, "is_mean": 4.2, "kid_mean": 0.010, "extractor": "x"},
              "seed1": {"fid": 5.1, "is_mean": 4.1, "kid_mean": 0.011, "extractor": "x"},
              "seed2": {"fid": 4.6, "is_mean": 4.3, "kid_mean": 0.009, "extractor": "x"}},
}


def test_table_has_one_row_per_variant_and_seed():
    table = ablation_table(RESULTS)
    assert list(zip(table.variant, table.seed)) == [("baseline", 0), ("baseline", 1), ("baseline", 2),
                                                    ("final", 0), ("final", 1), ("final", 2)]


def test_confidence_interval_is_the_t_interval():
    summary = summarize(ablation_table(RESULTS))
    row = summary[(summary.variant == "baseline") & (summary.metric == "fid")].iloc[0]
    x = np.array([8.0, 8.6, 7.9])
    low, high = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert row["mean"] == pytest.approx(x.mean()) and row["ci95"] == pytest.approx((high - low) / 2)


def test_welch_p_value_matches_scipy_and_says_final_differs():
    tests = pairwise_tests(ablation_table(RESULTS))
    fid = tests[tests.metric == "fid"].iloc[0]
    expected = stats.ttest_ind([8.0, 8.6, 7.9], [4.8, 5.1, 4.6], equal_var=False).pvalue
    assert (fid.a, fid.b) == ("baseline", "final") and fid.p_welch == pytest.approx(expected) and fid.p_welch < 0.01
    assert fid["diff"] == pytest.approx(np.mean([4.8, 5.1, 4.6]) - np.mean([8.0, 8.6, 7.9]))


def test_markdown_is_readable_alone():
    table = ablation_table(RESULTS)
    md = render_markdown(summarize(table), pairwise_tests(table), {"extractor": "x", "n_samples": 10})
    assert "How it was measured: extractor = x, n_samples = 10." in md
    assert "| baseline | 3 | 8.167 ± " in md and "| baseline | final | FID |" in md
    assert "Not enough seeds" not in md


def test_single_seed_says_no_test_is_possible():
    one = {v: {"seed0": r["seed0"]} for v, r in RESULTS.items()}
    table = ablation_table(one)
    summary, tests = summarize(table), pairwise_tests(table)
    assert summary["ci95"].isna().all() and tests["p_welch"].isna().all()
    md = render_markdown(summary, tests, {})
    assert "Not enough seeds for a test" in md and "| baseline | 1 | 8 |" in md
    metrics = summary_metrics(summary)
    assert metrics["final"] == {"n_seeds": 1, "fid_mean": 4.8, "kid_mean": 0.01, "is_mean": 4.2}
    assert not any(math.isnan(v) for entry in metrics.values() for v in entry.values())
