"""The verdicts on synthetic numbers: a score that grows with the level passes, one that dips or stays put fails,
recall may rest at 0, two extractions agree or do not, and what fails becomes one warning line per check."""

import pytest
import torch

from dcgan_lab.validation.checks import (
    BATCH_SIZE, FID_RISES, RECALL_FALLS, checks, features_agree, monotone, over_floor, sensitivity, spearman,
    summary_line, verdict,
)

BATCH_OK = {"ok": True, "max_abs_diff": 1e-7, "tolerance": 1e-5, "n_images": 256, "batch_sizes": [1, 500]}


def scores(fid, recall=(0.9, 0.7, 0.5, 0.3, 0.1)):
    return {"fid": list(fid), "recall": list(recall)}


def test_a_metric_that_grows_with_the_level_is_monotone_and_one_that_dips_or_stays_is_not():
    assert spearman([0.4, 1.0, 3.0, 9.0, 30.0]) == pytest.approx(1.0) and monotone([0.4, 1.0, 3.0, 9.0, 30.0], +1)
    assert monotone([0.4, 0.41, 50.0, 50.1, 400.0], +1)  # steadily, however unevenly
    assert not monotone([0.4, 1.0, 0.9, 9.0, 30.0], +1)  # one dip is enough
    assert not monotone([0.4, 1.0, 1.0, 9.0, 30.0], +1)  # a tie is not a rise
    assert not monotone([30.0, 9.0, 3.0, 1.0, 0.4], +1) and monotone([30.0, 9.0, 3.0, 1.0, 0.4], -1)
    assert spearman([2.0, 2.0, 2.0]) is None and spearman([1.0]) is None
    assert not monotone([2.0, 2.0, 2.0], +1) and not monotone([1.0], +1)


def test_recall_may_fall_to_its_bound_and_rest_there_but_not_leave_it():
    assert not monotone([0.9, 0.5, 0.0, 0.0, 0.0], -1)  # Spearman's rho alone: ties
    assert monotone([0.9, 0.5, 0.0, 0.0, 0.0], -1, bound=0.0)
    assert monotone([0.9, 0.0, 0.0, 0.0, 0.0], -1, bound=0.0)
    assert not monotone([0.9, 0.0, 0.1, 0.0, 0.0], -1, bound=0.0)  # back up from 0
    assert not monotone([0.9, 0.5, 0.6, 0.0, 0.0], -1, bound=0.0)  # a rise before it gets there
    assert not monotone([0.0, 0.0, 0.0], -1, bound=0.0)  # at the bound undisturbed: nothing fell


def test_fid_over_the_floor_and_the_sensitivity_is_the_median_of_the_mildest_levels():
    assert over_floor([0.5, 1.0, 5.0]) == [1.0, 2.0, 10.0] and over_floor([0.0, 1.0]) == [None, None]
    ratios = {"a": [1.0, 2.0, 9.0], "b": [1.0, 40.0, 90.0], "c": [1.0, 3.0, 4.0], "d": [None, None]}
    assert sensitivity(ratios) == 3.0 and sensitivity({}) is None


def test_two_extractions_agree_within_the_tolerance_of_the_largest_feature():
    a = torch.tensor([[1.0, -4.0], [2.0, 0.5]], dtype=torch.float64)
    same = features_agree(a, a + 1e-6, 1e-5)
    assert same["ok"] and same["max_abs_diff"] == pytest.approx(1e-6, rel=1e-3) and same["tolerance"] == 4e-5
    off = features_agree(a, a + 1e-3, 1e-5)
    assert not off["ok"] and off["max_abs_diff"] == pytest.approx(1e-3, rel=1e-3)
    assert features_agree(torch.full((2, 2), 0.1), torch.full((2, 2), 0.1 + 5e-6), 1e-5)["tolerance"] == 1e-5
    assert features_agree(a, a[:1], 1e-5) == {"ok": False, "max_abs_diff": None, "tolerance": 4e-5}


def test_a_failed_batch_size_comparison_fails_the_extractor_with_one_warning():
    good = {"noise": scores([0.1, 1, 2, 3, 4]), "mode_dropping": scores([0.2, 5, 9, 20, 40])}
    checked = checks(good, {**features_agree(torch.ones(4, 2), torch.ones(4, 2) + 0.01, 1e-5), "n_images": 4,
                            "batch_sizes": [1, 4]})
    assert checked[FID_RISES]["ok"] and checked[RECALL_FALLS]["ok"] and not checked[BATCH_SIZE]["ok"]
    failed, warnings = verdict("x", checked)
    assert failed == [BATCH_SIZE] and len(warnings) == 1
    assert warnings[0].startswith("warning: x: its features depend on the batch size: max |diff| 0.01 between batch "
                                  "sizes 1 and 4 on 4 images")


def test_every_failed_check_is_named_with_its_rho_and_the_summary_says_it():
    d = {"noise": scores([0.1, 1, 2, 3, 4]), "blur": scores([0.1, 2, 1, 3, 4]),
         "mode_collapse": scores([0.1, 1, 2, 3, 4], recall=[0.9, 0.0, 0.2, 0.0, 0.0])}
    checked = checks(d, BATCH_OK)
    assert checked[FID_RISES]["failed"] == ["blur"] and checked[FID_RISES]["spearman"]["blur"] == pytest.approx(0.9)
    assert not checked[RECALL_FALLS]["ok"] and checked[RECALL_FALLS]["failed"] == ["mode_collapse"]
    failed, warnings = verdict("x", checked)
    assert failed == [FID_RISES, RECALL_FALLS] and len(warnings) == 2
    assert "under blur (Spearman rho 0.9)" in warnings[0] and "under mode_collapse (Spearman rho" in warnings[1]
    result = {"checks": checked, "floor_fid": 0.0391, "n": 5000, "sensitivity": 35.2}
    line = summary_line("x", result, {"split": "val", "n_reference": 10000, "reference_split": "test"})
    assert line == ("x: floor FID 0.0391 (5000 val vs 10000 test images); FID rises in 2 of 3 disturbances (not under "
                    "blur); recall does not fall under mode_collapse; batch-size invariant (max |diff| 1e-07); "
                    "sensitivity 35.2x floor")


def test_all_passing_checks_read_as_such():
    d = {"noise": scores([0.1, 1, 2, 3, 4]), "mode_dropping": scores([0.2, 5, 9, 20, 40]),
         "mode_collapse": scores([0.1, 1, 2, 3, 4], recall=[0.9, 0.5, 0.0, 0.0, 0.0])}
    checked = checks(d, BATCH_OK)
    assert verdict("x", checked) == ([], [])
    line = summary_line("x", {"checks": checked, "floor_fid": 0.04, "n": 10, "sensitivity": None},
                        {"split": "val", "n_reference": 20, "reference_split": "test"})
    assert ("FID rises in 3 of 3 disturbances; recall falls under mode dropping and collapse; batch-size "
            "invariant") in line
    assert line.endswith("sensitivity undefined floor")
    assert checked[RECALL_FALLS]["spearman"] == {"mode_dropping": -1.0, "mode_collapse": pytest.approx(-0.894427191)}
