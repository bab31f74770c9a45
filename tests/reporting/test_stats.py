"""Tests for the exploratory comparison statistics and the report's formatting, on synthetic tables with known
answers."""
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from dcgan_lab.reporting.stats import (
    Comparison, compare, exploratory_line, favour, fmt_effect, fmt_interval, fmt_num, fmt_p, json_ready, noise_floor,
    p_text, pairs_for, seeds_text, values,
)

# No scipy warning may leak out (constant input, precision loss, ...).
pytestmark = pytest.mark.filterwarnings("error")
M = "\u2212"


def make(data: dict, metric: str = "fid", seeds: dict | None = None) -> pd.DataFrame:
    """Long table from {variant: values}; seeds default to 0..n-1 per variant."""
    rows = []
    for variant, vals in data.items():
        for seed, value in zip((seeds or {}).get(variant, range(len(vals))), vals):
            rows.append({"variant": variant, "seed": seed, metric: value})
    return pd.DataFrame(rows)


# --- the exploratory comparison ---------------------------------------------------------------------------------

def test_paired_interval_matches_scipy_and_seeds_are_counted():
    a, b = [22.1, 25.3, 21.7, 24.0], [23.0, 26.9, 22.2, 25.8]
    c = compare(make({"a": a, "b": b}), "a", "b", "fid", lower_is_better=True)
    ci = st.ttest_rel(a, b).confidence_interval()
    assert (c.test, c.ci_low, c.ci_high) == ("paired t", ci.low, ci.high)
    assert c.diff == pytest.approx(np.mean(np.subtract(a, b)))
    assert (c.favour.side, c.favour.k, c.favour.n) == ("a", 4, 4)  # lower FID in every seed
    assert c.favour.share_low == pytest.approx(0.05 ** (1 / 4))  # Clopper–Pearson with k = n: alpha^(1/n)


def test_different_seed_sets_fall_back_to_welch_and_count_only_common_seeds():
    a, b = [10.0, 12.0, 11.0], [14.0, 15.5, 13.0]
    c = compare(make({"a": a, "b": b}, seeds={"a": [0, 1, 2], "b": [0, 1, 3]}), "a", "b", "fid", True)
    ci = st.ttest_ind(a, b, equal_var=False).confidence_interval()
    assert (c.test, c.n_pairs, c.ci_low, c.ci_high) == ("Welch t", 2, ci.low, ci.high)
    assert (c.favour.k, c.favour.n) == (2, 2)


def test_higher_is_better_flips_the_favoured_side_and_ties_favour_neither():
    t = make({"a": [1.0, 2.0, 3.0, 4.0], "b": [0.5, 2.5, 3.0, 3.0]}, metric="is_mean")
    up, down = favour(values(t, "a", "is_mean"), values(t, "b", "is_mean"), "a", "b", False), \
        favour(values(t, "a", "is_mean"), values(t, "b", "is_mean"), "a", "b", True)
    assert (up.side, up.k, up.n) == ("a", 2, 4) and (down.side, down.k, down.n) == ("b", 2, 4)  # seed 2: a tie
    assert up.share_low == pytest.approx(st.beta.ppf(0.05, 2, 3))  # one-sided 95% Clopper–Pearson lower bound


def test_constant_values_take_the_limit_without_a_warning():
    same = compare(make({"a": [5.0] * 3, "b": [5.0] * 3}), "a", "b", "fid", True)
    assert (same.diff, same.ci_low, same.ci_high) == (0.0, 0.0, 0.0)
    shifted = compare(make({"a": [6.0] * 3, "b": [5.0] * 3}, seeds={"b": [4, 5, 6]}), "a", "b", "fid", True)
    assert (shifted.test, shifted.ci_low, shifted.ci_high) == ("Welch t", 1.0, 1.0)


def test_one_seed_or_a_missing_metric_is_na_and_says_why():
    c = compare(make({"final": [4.38], "baseline": [6.38]}), "final", "baseline", "fid", True)
    assert c.test == "n/a" and math.isnan(c.ci_low) and c.reason == "an interval needs at least 2 seeds per variant"
    assert exploratory_line(c, "FID") == ("final vs baseline, FID (exploratory): 4.38 vs 6.38 with 1 seed: an "
                                          "interval needs at least 2 seeds per variant")
    missing = compare(make({"a": [1.0, 2.0, float("nan")], "b": [float("nan")] * 3}), "a", "b", "fid", True)
    assert (missing.n_variant, missing.n_other, missing.reason) == (2, 0, "no fid values for b")
    json.dumps(c.to_dict(), allow_nan=False)


def test_the_exploratory_line_never_names_a_winner():
    c = compare(make({"baseline": [30.0, 31.0, 29.5], "final": [20.0, 21.2, 19.4]}), "final", "baseline", "fid", True)
    line = exploratory_line(c, "FID")
    assert line.startswith(f"final vs baseline, FID (exploratory): {M}10.0 [")
    assert "(95% interval, not adjusted, paired t); 3 of 3 seeds favour final (share ≥ 0.37" in line
    assert "better" not in line


def test_duplicate_seed_rows_are_rejected():
    with pytest.raises(ValueError, match="duplicate seeds"):
        compare(make({"a": [1.0, 2.0], "b": [1.0, 2.0]}, seeds={"a": [0, 0]}), "a", "b", "fid", True)


# --- helpers ----------------------------------------------------------------------------------------------------

def test_pairs_for_order():
    assert pairs_for(["radford", "baseline", "improved", "final"], "radford") == [
        ("baseline", "radford"), ("improved", "radford"), ("final", "radford"),
        ("improved", "baseline"), ("final", "baseline"), ("final", "improved")]
    with pytest.raises(ValueError):
        pairs_for(["a", "b"], "z")


def test_noise_floor_values_and_order():
    t = make({"z": [1.0, 2.0, 3.0], "a": [4.0], "m": [1.0, float("nan"), 3.0]})
    nf = noise_floor(t, ["fid"])
    assert list(nf.variant) == ["z", "a", "m"]
    z = nf.iloc[0]
    assert (z.n_seeds, z["mean"], z.sd) == (3, 2.0, 1.0)
    assert z.ci95 == pytest.approx(4.302652729911275 / math.sqrt(3))  # t_.975,2 * sd / sqrt n
    assert nf.iloc[1].n_seeds == 1 and math.isnan(nf.iloc[1].sd) and math.isnan(nf.iloc[1].ci95)
    assert (nf.iloc[2].n_seeds, nf.iloc[2]["mean"]) == (2, 2.0)


def test_number_and_p_formatting():
    assert [fmt_p(p) for p in (0.004, 0.41, 0.0004, 1.0, float("nan"))] == ["0.004", "0.41", "< 0.001", "1", "–"]
    assert fmt_p(0.0499) == "0.0499"  # 2 digits would round up to alpha
    assert (p_text(0.0004), p_text(0.41)) == ("< 0.001", "= 0.41")
    assert [fmt_num(x, sign=True) for x in (-2.0, 0.234, 1234.5)] == [f"{M}2.0", "+0.23", "+1234"]
    assert fmt_num(4.384, 3) == "4.38" and fmt_num(float("nan")) == "–"
    assert (seeds_text(3, 3, 3), seeds_text(1, 1, 1), seeds_text(2, 3, 2)) == ("3 seeds", "1 seed", "2 vs 3 seeds")


def test_effect_formatting_shares_decimals_with_the_interval():
    assert fmt_effect(-2.0, -2.6, -1.4) == f"{M}2.0 [{M}2.6, {M}1.4]"
    assert fmt_effect(-12.31, -12.8, -11.82) == f"{M}12.3 [{M}12.8, {M}11.8]"  # half-width 0.49 -> 1 decimal
    assert fmt_effect(153.2, 120.1, 186.3) == "+153 [120, 186]"
    assert fmt_effect(0.0, 0.0, 0.0) == "0 [0, 0]"
    assert fmt_effect(1.5, float("nan"), float("nan")) == "+1.5"
    assert fmt_interval(-2.0, -2.6, -1.4) == f"[{M}2.6, {M}1.4]"


def test_a_bound_that_is_not_zero_never_prints_as_zero():
    assert fmt_effect(-2.23, -4.46, -0.0004) == f"{M}2.2300 [{M}4.4600, {M}0.0004]"
    assert fmt_effect(2.0, 0.003, 4.0) == "+2.000 [0.003, 4.000]"


def test_to_dict_is_strict_json():
    c = Comparison("fid", "a", "b", 1, 1, 1, 1.0, 2.0, -1.0, float("nan"), float("nan"), "n/a")
    assert c.to_dict()["ci_low"] is None
    json.dumps(c.to_dict(), allow_nan=False)


def test_json_ready_turns_every_nan_and_inf_into_none_at_any_depth_and_rounds_only_when_asked():
    x = {"a": math.nan, "b": {"c": [math.inf, 1.23456789, -math.inf]}, "n": 3, "ok": True, "s": "x", "none": None}
    assert json_ready(x) == {"a": None, "b": {"c": [None, 1.23456789, None]}, "n": 3, "ok": True, "s": "x",
                             "none": None}
    assert json_ready(x, digits=6)["b"]["c"][1] == 1.234568
    assert json_ready(np.float64("nan")) is None  # numpy floats are floats
    json.dumps(json_ready(x), allow_nan=False)
