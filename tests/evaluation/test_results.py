"""The shape of eval.json and its table form, which the report reads."""

from dcgan_lab.evaluation.results import results_table

RESULTS = {
    "baseline": {"seed0": {"fid": 8.0, "is_mean": 3.1, "kid_mean": 0.020, "extractor": "x"},
                 "seed1": {"fid": 8.6, "is_mean": 3.0, "kid_mean": 0.024, "extractor": "x"},
                 "seed2": {"fid": 7.9, "is_mean": 3.2, "kid_mean": 0.019, "extractor": "x"}},
    "final": {"seed0": {"fid": 4.8, "is_mean": 4.2, "kid_mean": 0.010, "extractor": "x"},
              "seed1": {"fid": 5.1, "is_mean": 4.1, "kid_mean": 0.011, "extractor": "x"},
              "seed2": {"fid": 4.6, "is_mean": 4.3, "kid_mean": 0.009, "extractor": "x"}},
}


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
