"""Tests for the seed-aware comparison statistics, on synthetic tables with known answers."""
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from dcgan_lab.reporting.stats import Comparison, compare, compare_all, fmt_effect, fmt_num, fmt_p, holm, markdown_table, noise_floor, pairs_for, verdict

# No scipy warning may leak out (constant input, precision loss, ...).
pytestmark = pytest.mark.filterwarnings("error")

Z = 1.959963984540054 + 0.8416212335729143  # z_0.975 + z_0.80 = 2.801585...


def make(data: dict, metric: str = "fid", seeds: dict | None = None) -> pd.DataFrame:
    """Long table from {variant: values}; seeds default to 0..n-1 per variant."""
    rows = []
    for variant, values in data.items():
        for seed, value in zip((seeds or {}).get(variant, range(len(values))), values):
            rows.append({"variant": variant, "seed": seed, metric: value})
    return pd.DataFrame(rows)


# --- significance and verdicts --------------------------------------------------------

def test_large_consistent_difference_is_significant_lower_is_better():
    t = make({"baseline": [30.0, 31.0, 29.5, 30.5], "final": [20.0, 21.2, 19.4, 20.6]})
    c = compare_all(t, [("final", "baseline")], ["fid"])[0]
    assert c.test == "paired t"
    assert c.diff == pytest.approx(-9.95)
    assert c.p < 0.001 and c.p_holm == c.p  # family of one: Holm changes nothing
    line = verdict(c, lower_is_better=True, label="FID")
    assert line.endswith(": final better")
    assert line.startswith("final vs baseline: FID \u22129.9")
    assert "p < 0.001 (paired t, Holm)" in line
    # the same numbers for a higher-is-better metric make baseline the better one
    assert verdict(c, lower_is_better=False, label="IS").endswith(": baseline better")


def test_large_difference_higher_is_better_metric_names_right_winner_both_orders():
    t = make({"baseline": [6.0, 6.2, 5.9], "final": [7.0, 7.1, 7.05]}, metric="is_mean")
    fwd, rev = compare_all(t, [("final", "baseline"), ("baseline", "final")], ["is_mean"])
    assert fwd.diff > 0 and rev.diff < 0 and fwd.p_holm < 0.05 and rev.p_holm < 0.05
    assert verdict(fwd, lower_is_better=False, label="IS").endswith(": final better")
    assert verdict(rev, lower_is_better=False, label="IS").endswith(": final better")


def test_identical_columns_not_significant_and_no_winner():
    vals = [20.0, 23.5, 21.1, 22.7, 19.9]
    t = make({"a": vals, "b": vals})
    c = compare_all(t, [("a", "b")], ["fid"])[0]
    assert (c.diff, c.ci_low, c.ci_high) == (0.0, 0.0, 0.0)
    assert c.p == 1.0 and c.p_welch == 1.0 and c.p_wilcoxon == 1.0 and c.p_holm == 1.0
    assert c.seeds_needed is None
    line = verdict(c, lower_is_better=True, label="FID")
    assert line == "a vs b: not distinguishable with 5 seeds (FID 0 [0, 0], p = 1, paired t, Holm)"
    assert "better" not in line


def test_constant_values_do_not_warn_and_follow_the_t_limit():
    same = compare(make({"a": [5.0] * 3, "b": [5.0] * 3}), "a", "b", "fid")
    assert (same.p, same.p_welch, same.ci_low, same.ci_high) == (1.0, 1.0, 0.0, 0.0)
    shifted = compare(make({"a": [6.0] * 3, "b": [5.0] * 3}), "a", "b", "fid")
    assert (shifted.p, shifted.p_welch, shifted.ci_low, shifted.ci_high) == (0.0, 0.0, 1.0, 1.0)
    assert shifted.seeds_needed == 2  # sd 0: formula gives 0, floored at 2
    # one constant group beside a noisy one goes through scipy without its precision warning
    mixed = compare(make({"a": [1.0, 1.0, 1.0], "b": [2.0, 3.0, 2.0]}, seeds={"b": [7, 8, 9]}), "a", "b", "fid")
    assert mixed.test == "Welch t" and math.isfinite(mixed.p)


def test_paired_test_finds_shared_seed_effect_that_welch_misses():
    offsets = np.array([0.0, 10.0, 20.0])  # per-seed effect shared by both variants
    t = make({"new": list(offsets + 1.0 + np.array([0.02, -0.03, 0.01])), "old": list(offsets)})
    c = compare(t, "new", "old", "fid")
    assert c.test == "paired t"
    assert c.diff == pytest.approx(1.0)
    assert c.p < 0.01 and c.p == c.p_paired
    assert c.p_welch > 0.05  # ~0.9: the seed spread (sd 10) drowns the difference
    assert c.p_welch == pytest.approx(st.ttest_ind(t.fid[:3], t.fid[3:], equal_var=False).pvalue)


def test_paired_p_matches_closed_form():
    # d = [1, 2, 3]: t = 2 / (1 / sqrt 3) = sqrt 12, df 2; two-sided p = 1 - t / sqrt(2 + t^2)
    c = compare(make({"a": [1.0, 2.0, 3.0], "b": [0.0, 0.0, 0.0]}), "a", "b", "fid")
    assert c.p == pytest.approx(1 - math.sqrt(12 / 14), rel=1e-12)  # 0.074180...


# --- Holm -----------------------------------------------------------------------------

def test_holm_matches_hand_computation():
    # sorted: 0.01 (x3) = 0.03, 0.03 (x2) = 0.06, 0.04 (x1) = 0.04 -> running max 0.06
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06], abs=1e-15)


def test_holm_monotone_capped_and_nan_ignored():
    # 0.01*3 = 0.03, 0.011*2 = 0.022 -> raised to 0.03 (monotone), 0.5*1 = 0.5
    assert holm([0.5, 0.011, 0.01]) == pytest.approx([0.5, 0.03, 0.03], abs=1e-15)
    assert list(holm([0.5, 0.6])) == [1.0, 1.0]
    out = holm([0.01, float("nan"), 0.04])  # m = 2: 0.02, 0.04
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == pytest.approx(0.04)
    assert holm([]).shape == (0,)


def test_compare_all_holm_family_is_one_metric():
    rng = np.random.default_rng(0)
    rows = [{"variant": v, "seed": s, "fid": 20 + i + rng.normal(), "recall": 0.5 + rng.normal(0, 0.01)}
            for i, v in enumerate(["a", "b", "c"]) for s in range(4)]
    t = pd.DataFrame(rows)
    pairs = pairs_for(["a", "b", "c"], "a")
    comps = compare_all(t, pairs, ["fid", "recall"])
    assert [(c.metric, c.variant, c.other) for c in comps[:3]] == [("fid", v, o) for v, o in pairs]
    for metric in ["fid", "recall"]:
        family = [c for c in comps if c.metric == metric]
        assert [c.p_holm for c in family] == list(holm([c.p for c in family]))


# --- small samples and seed sets ------------------------------------------------------

def test_one_seed_is_na_and_says_why():
    t = make({"final": [4.38], "baseline": [6.38]})
    c = compare_all(t, [("final", "baseline")], ["fid"])[0]
    assert c.test == "n/a" and math.isnan(c.p) and math.isnan(c.ci_low) and math.isnan(c.p_holm)
    assert c.reason == "a test needs at least 2 seeds per variant"
    assert verdict(c, True, "FID") == (
        "final vs baseline: n/a with 1 seed (FID 4.38 vs 6.38): a test needs at least 2 seeds per variant")
    lopsided = compare(make({"final": [4.0], "baseline": [6.0, 6.5, 6.1]}), "final", "baseline", "fid")
    assert verdict(lopsided, True, "FID").startswith("final vs baseline: n/a with 1 vs 3 seeds")


def test_missing_metric_is_skipped_and_reported():
    t = make({"a": [1.0, 2.0, float("nan")], "b": [float("nan")] * 3})
    c = compare(t, "a", "b", "fid")
    assert (c.n_variant, c.n_other, c.test, c.reason) == (2, 0, "n/a", "no fid values for b")


def test_wilcoxon_needs_five_pairs():
    five = compare(make({"a": [1.0, 2, 3, 4, 5], "b": [0.0] * 5}), "a", "b", "fid")
    assert five.p_wilcoxon == 0.0625  # exact: all 5 differences positive, 2 / 2^5
    four = compare(make({"a": [1.0, 2, 3, 4], "b": [0.0] * 4}), "a", "b", "fid")
    assert math.isnan(four.p_wilcoxon)


def test_different_seed_sets_fall_back_to_welch():
    a, b = [10.0, 12.0, 11.0], [14.0, 15.5, 13.0]
    t = make({"a": a, "b": b}, seeds={"a": [0, 1, 2], "b": [0, 1, 3]})
    c = compare(t, "a", "b", "fid")
    ref = st.ttest_ind(a, b, equal_var=False)
    assert (c.test, c.n_pairs) == ("Welch t", 2)
    assert c.p == ref.pvalue == c.p_welch
    assert c.diff == pytest.approx(11.0 - 14.166666666666666)
    assert c.p_paired == st.ttest_rel(a[:2], b[:2]).pvalue  # informative, on the 2 shared seeds
    # a NaN for one seed also breaks the pairing
    t.loc[(t.variant == "b") & (t.seed == 3), "seed"] = 2
    t.loc[(t.variant == "a") & (t.seed == 2), "fid"] = float("nan")
    assert compare(t, "a", "b", "fid").test == "Welch t"


def test_ci_matches_scipy_paired_and_welch():
    a, b = [22.1, 25.3, 21.7, 24.0], [23.0, 26.9, 22.2, 25.8]
    paired = compare(make({"a": a, "b": b}), "a", "b", "fid")
    ci = st.ttest_rel(a, b).confidence_interval()
    assert (paired.ci_low, paired.ci_high) == (ci.low, ci.high)
    welch = compare(make({"a": a, "b": b}, seeds={"b": [10, 11, 12, 13]}), "a", "b", "fid")
    ci = st.ttest_ind(a, b, equal_var=False).confidence_interval()
    assert (welch.ci_low, welch.ci_high) == (ci.low, ci.high)


def test_seeds_needed_matches_formula_by_hand():
    # paired d = [0, 1, 5]: mean 2, sd sqrt(7); n = (2.8016 * 2.6458 / 2)^2 = 13.74 -> 14
    c = compare(make({"a": [0.0, 1.0, 5.0], "b": [0.0, 0.0, 0.0]}), "a", "b", "fid")
    assert (Z * math.sqrt(7) / 2) ** 2 == pytest.approx(13.7355, abs=1e-4)
    assert c.seeds_needed == 14
    # unpaired a = [0, 2, 4] (var 4), b = [1, 3, 5, 7] (var 20/3): pooled var (2*4 + 3*20/3)/5 = 5.6
    # diff -2; per group n = 2 * (2.8016 * sqrt 5.6 / 2)^2 = 21.98 -> 22
    t = make({"a": [0.0, 2.0, 4.0], "b": [1.0, 3.0, 5.0, 7.0]}, seeds={"b": [5, 6, 7, 8]})
    c = compare(t, "a", "b", "fid")
    assert 2 * (Z * math.sqrt(5.6) / 2) ** 2 == pytest.approx(21.977, abs=1e-3)
    assert (c.test, c.seeds_needed) == ("Welch t", 22)


# --- helpers --------------------------------------------------------------------------

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


def test_duplicate_seed_rows_are_rejected():
    t = make({"a": [1.0, 2.0], "b": [1.0, 2.0]}, seeds={"a": [0, 0]})
    with pytest.raises(ValueError, match="duplicate seeds"):
        compare(t, "a", "b", "fid")


def base(**kw) -> Comparison:
    fields = dict(metric="fid", variant="final", other="baseline", n_variant=3, n_other=3, n_pairs=3,
                  mean_variant=20.0, mean_other=22.0, diff=-2.0, ci_low=-2.6, ci_high=-1.4,
                  test="paired t", p=0.0013, p_holm=0.004, seeds_needed=2)
    return Comparison(**{**fields, **kw})


def test_verdict_formats():
    assert verdict(base(), True, "FID") == (
        "final vs baseline: FID \u22122.0 [\u22122.6, \u22121.4], p = 0.004 (paired t, Holm): final better")
    ns = base(variant="improved", other="final", diff=0.23, ci_low=-0.9, ci_high=1.4, p_holm=0.41, seeds_needed=12)
    assert verdict(ns, True, "FID") == (
        "improved vs final: not distinguishable with 3 seeds (FID +0.23 [\u22120.90, 1.40], p = 0.41, "
        "paired t, Holm); about 12 seeds would resolve a difference this size")
    assert verdict(base(p_holm=0.2, seeds_needed=None), True, "FID").endswith("paired t, Holm)")
    border = verdict(base(p_holm=0.06, seeds_needed=3), True, "FID")
    assert "borderline" in border and "better" not in border
    no_holm = verdict(base(p_holm=float("nan")), True, "FID")  # compare() alone: raw p, says so
    assert no_holm.endswith("p = 0.0013 (paired t): final better")


def test_number_and_p_formatting():
    assert [fmt_p(p) for p in (0.004, 0.41, 0.0004, 1.0, float("nan"))] == ["0.004", "0.41", "< 0.001", "1", "–"]
    assert fmt_p(0.0499) == "0.0499"  # 2 digits would round up to alpha
    assert [fmt_num(x, sign=True) for x in (-2.0, 0.234, 1234.5)] == ["\u22122.0", "+0.23", "+1234"]
    assert fmt_num(4.384, 3) == "4.38" and fmt_num(float("nan")) == "–"


def test_effect_formatting_shares_decimals_with_the_interval():
    m = "\u2212"
    assert fmt_effect(-2.0, -2.6, -1.4) == f"{m}2.0 [{m}2.6, {m}1.4]"
    assert fmt_effect(-12.31, -12.8, -11.82) == f"{m}12.3 [{m}12.8, {m}11.8]"  # half-width 0.49 -> 1 decimal
    assert fmt_effect(153.2, 120.1, 186.3) == "+153 [120, 186]"
    assert fmt_effect(0.0, 0.0, 0.0) == "0 [0, 0]"
    assert fmt_effect(1.5, float("nan"), float("nan")) == "+1.5"


def test_to_dict_is_strict_json_and_markdown_table():
    t = make({"final": [4.38], "baseline": [6.38]})
    c = compare(t, "final", "baseline", "fid")
    d = c.to_dict()
    assert d["p"] is None and d["ci_low"] is None and d["diff"] == pytest.approx(-2.0)
    json.dumps([base().to_dict(), d], allow_nan=False)
    md = markdown_table([base(), c], labels={"fid": "FID"})
    lines = md.strip().split("\n")
    assert lines[0] == ("| variant | vs | metric | mean | mean (other) | diff [95% CI] | test | p | p (Welch) "
                        "| p (Wilcoxon) | p (Holm) | seeds for 80% power |")
    assert len(lines) == 4 and lines[1].count("---") == 12
    assert lines[2] == ("| final | baseline | FID | 20.0 | 22.0 | \u22122.0 [\u22122.6, \u22121.4] | paired t "
                        "| 0.0013 | – | – | 0.004 | 2 |")
    assert "| n/a |" in lines[3] and lines[3].endswith("| – |")


def test_four_variants_three_seeds_end_to_end():
    offsets = [0.0, 1.5, -1.0]  # per-seed effect shared by all variants
    fid = {"radford": 40.0, "baseline": 30.0, "improved": 27.9, "final": 28.0}
    jitter = {"radford": [0.3, -0.2, 0.1], "baseline": [0.1, 0.2, -0.3],
              "improved": [0.4, -0.5, 0.2], "final": [-0.2, 0.3, 0.1]}
    rows = [{"variant": v, "seed": s, "fid": fid[v] + offsets[s] + jitter[v][s]} for v in fid for s in range(3)]
    comps = compare_all(pd.DataFrame(rows), pairs_for(list(fid), "radford"), ["fid"])
    lines = [verdict(c, True, "FID") for c in comps]
    assert all(c.test == "paired t" for c in comps)
    m = "\u2212"
    assert lines == [
        f"baseline vs radford: FID {m}10.1 [{m}11.1, {m}9.0], p = 0.0028 (paired t, Holm): baseline better",
        f"improved vs radford: FID {m}12.1 [{m}12.7, {m}11.6], p < 0.001 (paired t, Holm): improved better",
        f"final vs radford: FID {m}12 [{m}13, {m}11], p = 0.0028 (paired t, Holm): final better",
        f"improved vs baseline: not distinguishable with 3 seeds (FID {m}2.07 [{m}3.66, {m}0.47], p = 0.062, "
        "paired t, Holm); borderline (a rough power estimate says 2 seeds would do, 3 were run): "
        "a few more seeds should settle it",
        f"final vs baseline: FID {m}1.9 [{m}2.8, {m}1.1], p = 0.032 (paired t, Holm): final better",
        f"final vs improved: not distinguishable with 3 seeds (FID +0.13 [{m}1.63, 1.90], p = 0.78, "
        "paired t, Holm); about 223 seeds would resolve a difference this size"]
