"""A sequential design's looks on synthetic tables with known answers: which seeds each look uses, what it decides,
what stays open, and that nothing but the table and the seed order matters. The error rates over the looks are
proven by simulation in test_verdicts.py."""

import numpy as np
import pandas as pd
import pytest

from dcgan_lab.reporting.design import Design
from dcgan_lab.reporting.sequential import design_json, primary_family, usable_seeds

pytestmark = pytest.mark.filterwarnings("error")

ORDER = [17, 12, 10, 19, 11, 15, 13, 18, 14, 16]  # a declared order that is not sorted
PAIR = [("b", "a")]  # m = 1: each look tests at 0.028 two-sided (0.029 per TOST side), not 0.05


def design(looks=(5, 10)) -> Design:
    return Design("ema_fid", "FID of EMA G", True, 1.0, 0.05, looks=looks)


def table(diffs, seeds, base: float = 5.0) -> pd.DataFrame:
    """Variants a and b on the given seeds, b − a = diffs per seed (a varies by seed, as a seed effect would)."""
    rows = [{"variant": "a", "seed": s, "ema_fid": base + 0.3 * i} for i, s in enumerate(seeds)]
    rows += [{"variant": "b", "seed": s, "ema_fid": base + 0.3 * i + d} for i, (s, d) in enumerate(zip(seeds, diffs))]
    return pd.DataFrame(rows)


NOISE = [0.31, -0.52, 0.12, 0.44, -0.27, -0.05, 0.38, -0.41, 0.22, -0.18]  # a difference of about 0, SD 0.34


def test_each_look_takes_the_first_seeds_as_listed_and_only_the_table_and_the_order_matter():
    rng = np.random.default_rng(0)
    whole = table(list(rng.normal(-0.4, 0.8, 10)), ORDER)
    halves = pd.concat([whole[whole["seed"].isin(ORDER[5:])], whole[whole["seed"].isin(ORDER[:5])]])
    shuffled = halves.sample(frac=1.0, random_state=1)  # runs finished in any order, results gathered twice
    one, two = primary_family(whole, PAIR, design(), ORDER), primary_family(shuffled, PAIR, design(), ORDER)
    assert one[1][0].to_dict() == two[1][0].to_dict() and one[2] == two[2]
    assert one[2][0].seeds == tuple(ORDER[:5]) and one[1][0].seeds_used == tuple(sorted(ORDER[:one[1][0].look * 5]))
    other = primary_family(whole, PAIR, design(), sorted(ORDER))  # another declared order: other seeds at look 1
    assert other[2][0].seeds == (10, 11, 12, 13, 14)


def test_a_comparison_decided_at_a_look_keeps_its_verdict_and_is_not_tested_again():
    seeds = list(range(10, 20))
    diffs = [-2.0, -2.1, -1.9, -2.05, -1.95] + [3.0, 3.1, 2.9, 3.2, 2.8]  # b better at 5; the next 5 say otherwise
    d, (v,), looks = primary_family(table(diffs, seeds), PAIR, design(), seeds)
    assert (v.verdict, v.winner, v.look, v.seeds_used) == ("better", "b", 1, (10, 11, 12, 13, 14))
    assert v.sentence.startswith("b vs a at look 1 of 2: b better with 5 seeds on FID of EMA G: −2.0 [−2.1, "
                                 "−1.9] (97.2% repeated confidence interval, paired t, p < 0.001 against the "
                                 "boundary 0.028)")
    assert [(k.n, k.decided, k.open, k.inconclusive) for k in looks] == [(5, ("b_vs_a",), (), ()), (10, (), (), ())]
    assert v.boundary == d.level and v.ci_level == pytest.approx(1 - d.level)


def test_neither_better_nor_equivalent_is_open_until_the_last_look_then_inconclusive():
    seeds = list(range(10, 20))
    noisy = [x * 8 for x in NOISE]  # SD 2.7: neither at 5 seeds nor at 10
    _, (v5,), looks5 = primary_family(table(noisy[:5], seeds[:5]), PAIR, design(), seeds)
    assert (v5.verdict, v5.look, v5.next_look, v5.seeds_needed) == ("open", 1, 10, None)
    assert v5.sentence.startswith("b vs a at look 1 of 2: open with 5 seeds on FID of EMA G: ")
    assert v5.sentence.endswith("next look at 10 seeds per variant")
    assert [(k.decided, k.open) for k in looks5] == [((), ("b_vs_a",))]
    _, (v7,), looks7 = primary_family(table(noisy[:7], seeds[:7]), PAIR, design(), seeds)  # 15, 16: not used
    assert v7.to_dict() == v5.to_dict() and looks7 == looks5
    _, (v10,), looks10 = primary_family(table(noisy, seeds), PAIR, design(), seeds)
    assert (v10.verdict, v10.look, v10.next_look) == ("inconclusive", 2, None) and v10.seeds_needed > 10
    assert [(k.n, k.open, k.inconclusive) for k in looks10] == [(5, ("b_vs_a",), ()), (10, (), ("b_vs_a",))]
    assert "a new study of about" in v10.sentence and "fresh seeds per variant" in v10.sentence
    assert "(a fixed design, each comparison at alpha/m = 0.05;" in v10.sentence  # m = 1 here


def test_equivalent_at_the_first_look_when_the_difference_is_small_and_steady():
    seeds = list(range(10, 20))
    _, (v,), _ = primary_family(table([x / 10 for x in NOISE], seeds), PAIR, design(), seeds)
    assert (v.verdict, v.look) == ("equivalent", 1)
    assert v.sentence.startswith("b vs a at look 1 of 2: equivalent within ±1 with 5 seeds on FID of EMA G: ")
    assert "(94.3% TOST interval, inside ±1, paired t, TOST p < 0.001 against the boundary 0.029; the 97.2% " \
           "repeated confidence interval [" in v.sentence


def test_before_the_first_look_every_comparison_is_open_and_says_why():
    seeds = list(range(10, 20))
    pairs = [("b", "a"), ("c", "a"), ("c", "b")]
    t = pd.concat([table(NOISE[:3], seeds[:3]), table(NOISE[:3], seeds[:3]).query("variant == 'b'").assign(
        variant="c")])
    d, vs, looks = primary_family(t, pairs, design(), seeds)
    assert looks == [] and d.m == 3  # the m the design plans: every pair
    assert [(v.verdict, v.look, v.next_look) for v in vs] == [("open", 0, 5)] * 3
    assert vs[0].sentence.startswith("b vs a: open with 3 seeds (FID of EMA G ")
    assert vs[0].sentence.endswith("): no look reached yet, the first is at 5 seeds per variant")


def test_only_an_unbroken_start_of_the_order_is_used():
    seeds = list(range(10, 20))
    assert usable_seeds(table(NOISE[:5], [10, 11, 12, 14, 15]), seeds) == [10, 11, 12]  # 13 missing: stop there
    assert usable_seeds(table(NOISE[:5], [0, 1, 2, 3, 4]), seeds) == []  # the pilot's seeds are not the design's
    _, (v,), looks = primary_family(table(NOISE[:6], [10, 11, 12, 14, 15, 16]), PAIR, design(), seeds)
    assert looks == [] and v.verdict == "open"


def test_a_fixed_design_is_the_fixed_family_and_has_no_looks():
    t = table([x * 8 for x in NOISE[:3]], [0, 1, 2])
    d, (v,), looks = primary_family(t, PAIR, design(None), [10, 11])  # the order plays no part
    assert looks is None and v.look is None and v.verdict == "inconclusive" and v.seeds_used == (0, 1, 2)
    assert "99.9% simultaneous interval" not in v.sentence and "95% simultaneous interval" in v.sentence


def test_ablation_json_gets_the_looks_and_the_boundary():
    d = design()
    assert design_json(d) == {
        "correction": "Bonferroni over the comparisons, a Pocock-type boundary over the looks", "looks": [5, 10],
        "boundary": {"kind": "Pocock-type: one nominal level at every look, calibrated for the paired t",
                     "better": round(d.level, 6), "equivalent": round(d.tost_level, 6), "per_comparison_alpha": 0.05}}
