"""The mode-collapse alarm on known scores: which generator is flagged and why, in the words every place that
shows the flag prints (the warning, the MLflow tag). Real generators through the real evaluation: test_evaluate.py."""

from dcgan_lab.evaluation.collapse import collapse_reason, collapse_tag, collapse_warnings


def test_the_lowest_class_under_the_diversity_threshold_is_named_with_how_many_more_are_under_it():
    r = {"intra_diversity": [0.9, 0.31, None, 0.04, 0.45], "recall": 0.5}
    assert collapse_reason(r, 0.5, 0.1) == "class 3 diversity ratio 0.04 < 0.5 (and 2 more classes)"
    assert collapse_reason(r, 0.35, 0.1) == "class 3 diversity ratio 0.04 < 0.35 (and 1 more class)"
    assert collapse_reason(r, 0.04, 0.1) is None  # below, not at: a class without a ratio raises nothing


def test_a_recall_under_the_floor_is_flagged_on_its_own_or_beside_the_diversity():
    assert collapse_reason({"intra_diversity": [0.9, 1.0], "recall": 0.05}, 0.5, 0.1) == "recall 0.05 < 0.1"
    both = collapse_reason({"intra_diversity": [0.0, 0.0], "recall": 0.0}, 0.5, 0.1)
    assert both == "class 0 diversity ratio 0 < 0.5 (and 1 more class); recall 0 < 0.1"


def test_a_threshold_of_zero_turns_its_check_off_and_missing_scores_raise_nothing():
    r = {"intra_diversity": [0.0], "recall": 0.0}
    assert collapse_reason(r, 0.0, 0.0) is None
    assert collapse_reason({"intra_diversity": [None, None]}, 0.5, 0.1) is None  # precision_recall off: no recall


def test_the_tag_and_the_warnings_name_each_flagged_generator_of_a_run():
    flagged = {"collapse": "recall 0 < 0.1", "best_collapse": None, "ema_collapse": "class 2 diversity ratio 0.1 < 0.5"}
    assert collapse_tag(flagged) == "last: recall 0 < 0.1; EMA: class 2 diversity ratio 0.1 < 0.5"
    assert collapse_tag({"collapse": None, "ema_collapse": None}) == "none"
    results = {"radford": {"seed0": {"collapse": None}}, "cgan": {"seed0": {"collapse": None}, "seed2": flagged}}
    assert collapse_warnings(results) == [
        "warning: mode collapse in cgan seed 2, last generator: recall 0 < 0.1",
        "warning: mode collapse in cgan seed 2, EMA generator: class 2 diversity ratio 0.1 < 0.5"]
