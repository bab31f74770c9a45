"""The report's mode-collapse line, from eval.json's flags as evaluate stored them: none or some; and its lines
on the feature space's checks, from metrics/extractor.json as validate_extractor wrote it: passed or failed."""

from dcgan_lab.reporting.alarms import collapse_line, extractor_lines
from helpers import extractor_validation as validation

THRESHOLDS = {"diversity": 0.5, "recall": 0.1}


def run(collapse=None, best=None, ema=None, **extra) -> dict:
    """One run's result with the last, best and EMA generators' flags."""
    return {"fid": 5.0, "collapse": collapse, "best_collapse": best, "ema_collapse": ema,
            "collapse_thresholds": THRESHOLDS, **extra}


def test_no_flag_says_how_many_generators_were_checked_against_which_rule():
    results = {"radford": {"seed0": run(), "seed1": run()}, "final": {"seed0": run()}}
    assert collapse_line(results, ["radford", "final"]) == (
        "**Mode collapse:** none of the 9 scored generators flagged (alarm: a class's diversity ratio below 0.5 or "
        "recall below 0.1).")
    only_last = {"radford": {"seed0": {"fid": 5.0, "collapse": None, "collapse_thresholds": THRESHOLDS}}}
    assert "none of the 1 scored generators" in collapse_line(only_last, ["radford"])  # no best.pt, no EMA


def test_each_flagged_generator_is_named_with_its_run_and_reason():
    results = {"radford": {"seed0": run()},
               "cgan": {"seed0": run(collapse="recall 0 < 0.1", ema="class 3 diversity ratio 0.02 < 0.5"),
                        "seed1": run(best="recall 0.05 < 0.1")}}
    assert collapse_line(results, ["radford", "cgan"]) == (
        "**Mode collapse flagged** in 3 of 9 scored generators (alarm: a class's diversity ratio below 0.5 or recall "
        "below 0.1): cgan seed 0 last (recall 0 < 0.1), cgan seed 0 EMA (class 3 diversity ratio 0.02 < 0.5), "
        "cgan seed 1 best (recall 0.05 < 0.1).")
    assert collapse_line(results, ["radford"]).startswith("**Mode collapse:** none of the 3")  # only the compared


def test_a_check_turned_off_is_left_out_of_the_rule_and_an_older_eval_json_is_not_checked():
    off = {"radford": {"seed0": {**run(), "collapse_thresholds": {"diversity": 0.5, "recall": 0.0}}}}
    assert collapse_line(off, ["radford"]).endswith("(alarm: a class's diversity ratio below 0.5).")
    both_off = {"radford": {"seed0": {**run(), "collapse_thresholds": {"diversity": 0.0, "recall": 0.0}}}}
    assert collapse_line(both_off, ["radford"]).endswith("(alarm: off).")


def test_a_feature_space_that_passed_every_check_is_one_line_and_no_flag():
    flag, lines = extractor_lines(validation({"gaussian_noise": 1.0, "gaussian_blur": 1.0, "mode_dropping": 1.0}))
    assert flag is None
    assert lines == [
        "Feature space `dcgan-lab-classifier` checked (validate_extractor, metrics/extractor.json): FID rises with the "
        "level under all 3 disturbances (Spearman ρ = 1 each); recall falls as modes go missing (mode dropping, mode "
        "collapse); features equal at batch sizes 1 and 500 (max |diff| 1e-06); the mildest level of a disturbance "
        "lands a median 14.3x above its real-vs-real floor (FID 0.0391)."]
    assert extractor_lines(None) == (None, [])  # a report without the stage's file says nothing of it


def test_a_failed_check_flags_the_report_and_names_the_worst_disturbance():
    flag, (line,) = extractor_lines(validation({"gaussian_noise": 1.0, "elastic_warp": 0.9, "black_rectangles": 0.4},
                                               recall_ok=False, batch_diff=1e-3))
    assert flag == ("**Feature-space warning:** `dcgan-lab-classifier` failed fid_rises, recall_falls, "
                    "batch_size_invariance (metrics/extractor.json): its FID may not mean what it should; the numbers "
                    "are reported, read them with care.")
    assert "FID does not rise steadily under 2 of 3 disturbances, the worst black_rectangles (ρ 0.4)" in line
    assert "recall does not fall as modes go missing under mode_collapse" in line
    assert "features change with the batch size (max |diff| 0.001 > 3.7e-05)" in line
