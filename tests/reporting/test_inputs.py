"""What the report reads: every run's file from its evaluate@ stage, whole, and one line naming the stage that makes a
missing or unreadable one."""

import json

import pytest

from dcgan_lab.core.errors import DataError
from dcgan_lab.core.paths import EvalPaths
from dcgan_lab.reporting.inputs import protocol_of, read_input, read_json, read_results

RUN = {"fid": 4.0, "intra_fid": [], "collapse": None, "extractor": "x", "fid_features": "features", "n_samples": 10,
       "n_real": 20, "real_split": "test", "seed": 0, "kid_subset_size": 10, "extractor_test_accuracy": 0.99}


def test_the_runs_come_back_in_the_order_of_the_variants_and_seeds_asked_for(tmp_path):
    out = EvalPaths(tmp_path)
    for v, s in (("b", 11), ("a", 10), ("a", 11), ("b", 10)):
        out.run(v, s).parent.mkdir(parents=True, exist_ok=True)
        out.run(v, s).write_text(json.dumps({**RUN, "fid": s}))
    results = read_results(out, ["a", "b"], [11, 10])
    assert list(results) == ["a", "b"] and all(list(r) == ["seed11", "seed10"] for r in results.values())
    assert results["b"]["seed10"]["fid"] == 10
    assert protocol_of(results) == {"extractor": "x", "fid_features": "features", "n_samples": 10, "n_real": 20,
                                    "real_split": "test", "kid_subset_size": 10, "sample seed": 0,
                                    "extractor test accuracy": 0.99}


def test_an_unreadable_input_names_the_stage_to_rerun(tmp_path):
    path = tmp_path / "reference.json"
    path.write_text("{not json")
    with pytest.raises(DataError, match=r"reference\.json: unreadable \(.*\); rerun `dvc repro reference`$"):
        read_input(path, read_json, "reference")
