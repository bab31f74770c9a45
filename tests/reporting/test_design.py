"""The design-stage numbers: the family's level, noncentral-t power and the seed estimate, the SD's upper bound,
the signed-rank test's reach, and the boundary of a sequential design's looks."""

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats as st

from dcgan_lab.reporting.design import (
    MAX_SEEDS, Design, next_look, null_t_paths, pocock_level, power, sd_upper, seeds_needed, wilcoxon_can_pass,
    wilcoxon_seeds,
)

pytestmark = pytest.mark.filterwarnings("error")


def test_each_comparison_gets_its_bonferroni_share():
    d = Design("ema_fid", "FID of EMA G", True, 1.0, 0.05, m=6)
    assert d.level == pytest.approx(0.05 / 6)
    assert Design("fid", "FID", True, 1.0, 0.05, m=0).level == 0.05  # no testable comparison: no division by 0


def test_power_is_the_noncentral_t_and_grows_with_seeds():
    n, sd, margin, level = 5, 0.4, 1.0, 0.01
    crit, nc = st.t.ppf(1 - level / 2, n - 1), margin / (sd / math.sqrt(n))
    assert power(n, sd, margin, level) == pytest.approx(st.nct.sf(crit, n - 1, nc) + st.nct.cdf(-crit, n - 1, nc))
    curve = power(np.arange(2, 60), sd * 3, margin, level)
    assert np.all(np.diff(curve) >= 0) and curve[-1] > 0.99
    assert power(200, 0.75, 1.0, 0.05 / 6) == pytest.approx(1.0)  # far in the tail: no NaN from scipy
    assert power(3, 0.0, 1.0, 0.05) == 1.0  # no noise: any true difference is found


def test_power_at_a_small_level_and_few_seeds_is_the_t_tests_not_the_normal_limit():
    """scipy gives NaN for the far side's tail here (about 0): only that side falls back on the normal limit."""
    level, nc = 0.000929, 1.0 / (0.3 / math.sqrt(5))
    crit = st.t.ppf(1 - level / 2, 4)
    assert power(5, 0.3, 1.0, level) == pytest.approx(st.nct.sf(crit, 4, nc))  # 0.424, not the z test's 0.093
    rng = np.random.default_rng(0)  # and re-simulated, to 3 SE of 100,000 draws
    d = rng.normal(1.0, 0.3, (100000, 5))
    t = d.mean(1) / (d.std(1, ddof=1) / math.sqrt(5))
    assert abs((np.abs(t) > crit).mean() - power(5, 0.3, 1.0, level)) <= 3 * math.sqrt(0.25 / 100000)


def test_unpaired_power_is_the_two_sample_t():
    n, sd, margin, level = 8, 0.5, 0.6, 0.05
    df, nc = 2 * n - 2, margin / (sd * math.sqrt(2 / n))
    crit = st.t.ppf(1 - level / 2, df)
    assert power(n, sd, margin, level, is_paired=False) == pytest.approx(
        st.nct.sf(crit, df, nc) + st.nct.cdf(-crit, df, nc))


def test_the_sd_upper_bound_covers_the_true_sd_in_90_percent_of_samples():
    rng = np.random.default_rng(0)
    s = rng.normal(0, 2.0, (40000, 3)).std(1, ddof=1)
    covered = (sd_upper(s, 2) >= 2.0).mean()
    assert abs(covered - 0.90) <= 3 * math.sqrt(0.09 / 40000)


def test_the_seed_estimate_is_the_fewest_seeds_above_those_run_with_80_percent_power():
    level = 0.05 / 6
    n = int(seeds_needed(0.244, 2, 3, 1.0, level))
    sd_u = float(sd_upper(0.244, 2))
    assert power(n, sd_u, 1.0, level) >= 0.8 > power(n - 1, sd_u, 1.0, level)
    assert seeds_needed(0.001, 2, 3, 1.0, level) == 4  # enough already at 3: still one more than were run
    assert seeds_needed(1000.0, 2, 3, 1.0, level) == MAX_SEEDS + 1  # beyond reach: "more than 1000"
    many = seeds_needed(np.array([0.1, 0.3, 0.5]), 4, 5, 1.0, level)
    assert np.all(np.diff(many) > 0) and np.all(many > 5)


def test_wilcoxon_can_pass_six_comparisons_only_from_eight_seeds():
    level = 0.05 / 6
    assert wilcoxon_seeds(level) == 8
    assert not wilcoxon_can_pass(7, level) and wilcoxon_can_pass(8, level)
    assert wilcoxon_seeds(0.05) == 6  # one comparison: 2 / 2^5 = 0.0625 cannot, 2 / 2^6 = 0.031 can
    assert st.wilcoxon(np.arange(1.0, 9.0)).pvalue == pytest.approx(2 / 2**8)  # the smallest exact p


SHARE = 0.05 / 6  # alpha/m with 6 comparisons


def test_a_fixed_design_tests_at_the_share_and_a_sequential_one_at_its_calibrated_boundary():
    fixed = Design("ema_fid", "FID of EMA G", True, 1.0, 0.05, m=6)
    assert fixed.level == fixed.tost_level == fixed.share == pytest.approx(SHARE)
    looks = replace(fixed, looks=(5, 10))
    assert looks.share == fixed.share and looks.level == pocock_level((5, 10), SHARE, two_sided=True)
    assert looks.tost_level == pocock_level((5, 10), SHARE, two_sided=False)
    assert pocock_level((5,), SHARE) == SHARE  # one declared look: nothing to split
    for two_sided in (True, False):  # between Bonferroni over the 2 looks and the share itself
        assert SHARE / 2 < pocock_level((5, 10), SHARE, two_sided) < SHARE
    assert pocock_level((3, 5, 10), SHARE) < pocock_level((5, 10), SHARE)  # more looks, a lower level each


def test_the_boundary_is_stable_across_monte_carlo_seeds():
    """Its Monte Carlo SD is about 1% (BOUNDARY_DRAWS); three seeds' estimates lie within 3% of their mean."""
    for two_sided in (True, False):
        levels = np.array([pocock_level((5, 10), SHARE, two_sided, seed) for seed in (0, 1, 2)])
        assert np.all(np.abs(levels / levels.mean() - 1) < 0.03), levels


def test_the_null_t_paths_are_the_t_statistics_of_the_first_seeds():
    """The sufficient-statistic shortcut has the t law at each look: df looks[k] − 1 (Kolmogorov–Smirnov, 50,000
    draws, p > 0.001), and consecutive looks correlate as √(n_1 / n_2), as the z statistics would, roughly."""
    t = null_t_paths((5, 10), 50000, seed=3)
    for k, n in enumerate((5, 10)):
        assert st.kstest(t[k], st.t(n - 1).cdf).pvalue > 0.001
    rho = st.spearmanr(t[0], t[1]).statistic
    assert abs(rho - math.sqrt(0.5)) < 0.05, rho


def test_the_boundary_holds_the_rate_when_every_seed_is_drawn():
    """Brute force, independent of the shortcut: 200,000 null studies of 10 per-seed differences (SD 3), the paired
    t at the first 5 and at all 10 seeds; P(a rejection at either look) is the share, to ±3 SE, one- and two-sided."""
    rng = np.random.default_rng(4)
    d = rng.normal(0.0, 3.0, (200000, 10))
    t = np.stack([d[:, :n].mean(1) / (d[:, :n].std(1, ddof=1) / math.sqrt(n)) for n in (5, 10)])
    df = np.array([[4.0], [9.0]])
    for two_sided in (True, False):
        c = pocock_level((5, 10), SHARE, two_sided)
        crit = st.t.ppf(1 - c / 2 if two_sided else 1 - c, df)
        rate = ((np.abs(t) if two_sided else t) > crit).any(0).mean()
        assert abs(rate - SHARE) <= 3 * math.sqrt(SHARE * (1 - SHARE) / 200000), (two_sided, rate)


def test_next_look_is_the_first_with_more_seeds():
    assert [next_look((5, 10), n) for n in (0, 4, 5, 9, 10, 12)] == [5, 5, 10, 10, None, None]
