"""The shape of eval.json and its table form, which the report reads, with and without the per-class scores."""

import copy

from dcgan_lab.evaluation.results import collapse_flags, results_table
from helpers import EVAL_RESULTS

RESULTS = copy.deepcopy(EVAL_RESULTS)  # tests may add keys to their copy


def test_table_has_one_row_per_variant_and_seed():
    table = results_table(RESULTS)
    assert list(zip(table.variant, table.seed)) == [("baseline", 0), ("baseline", 1), ("baseline", 2),
                                                    ("final", 0), ("final", 1), ("final", 2)]


def test_scalar_entries_become_columns_and_lists_are_left_out():
    results = {"final": {"seed10": {"fid": 4.8, "class_histogram": [0.5, 0.5], "extractor": "x", "best_step": 5}}}
    table = results_table(results)
    assert list(table.columns) == ["variant", "seed", "fid", "extractor", "best_step"]
    assert table.iloc[0].to_dict() == {"variant": "final", "seed": 10, "fid": 4.8, "extractor": "x", "best_step": 5}


def test_the_seed_column_is_the_training_seed_and_the_sample_seed_keeps_its_own_name():
    results = {"final": {"seed2": {"fid": 4.8, "seed": 7}}}  # `seed` inside a result: the samples' noise seed
    row = results_table(results).iloc[0]
    assert (row["seed"], row["sample_seed"]) == (2, 7)


def test_per_class_scores_are_columns_where_present_and_the_per_class_list_is_left_out():
    """Runs without an entry others have (an unconditional G has no conditional accuracy) sit in one table with
    runs that have it: their cells are empty."""
    results = {
        "radford": {"seed0": {"fid": 8.0}},  # no per-class entries at all
        "uncond": {"seed0": {"fid": 6.0, "intra_fid": [5.0, None], "intra_fid_mean": 5.0, "intra_fid_classes": 1,
                             "intra_fid_grouping": "classifier prediction"}},
        "cond": {"seed0": {"fid": 5.0, "intra_fid": [4.0, 6.0], "intra_fid_mean": 5.0, "intra_fid_classes": 2,
                           "intra_fid_grouping": "requested label", "conditional_accuracy": 0.9}},
    }
    table = results_table(results).set_index("variant")
    assert list(table.columns) == ["seed", "fid", "intra_fid_mean", "intra_fid_classes", "intra_fid_grouping",
                                   "conditional_accuracy"]
    assert table.loc["cond", "conditional_accuracy"] == 0.9 and table.loc["uncond", "intra_fid_mean"] == 5.0
    assert table.loc["radford"].drop(["seed", "fid"]).isna().all()
    assert table.loc["uncond", "conditional_accuracy"] != table.loc["uncond", "conditional_accuracy"]  # NaN
    assert list(results_table({"radford": results["radford"]}).columns) == ["variant", "seed", "fid"]


def test_each_generators_collapse_flag_is_read_in_order_and_is_a_column_of_the_table():
    r = {"fid": 5.0, "collapse": None, "best_collapse": "recall 0 < 0.1",
         "ema_collapse": "class 1 diversity ratio 0 < 0.5", "collapse_thresholds": {"diversity": 0.5, "recall": 0.1}}
    assert collapse_flags(r) == [("best", "recall 0 < 0.1"), ("EMA", "class 1 diversity ratio 0 < 0.5")]
    assert collapse_flags({"fid": 5.0}) == []  # an evaluate without the alarm flags nothing
    table = results_table({"cgan": {"seed0": r}})
    assert list(table.columns) == ["variant", "seed", "fid", "collapse", "best_collapse", "ema_collapse"]
