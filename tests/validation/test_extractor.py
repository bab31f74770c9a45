"""The validation of a feature space with the real torch-fidelity and a real (tiny) classifier on noise: every
disturbance scored at every level, level 0 the floor, the checks and the verdict in a JSON-ready dict; the
batch-size check on the real extractor; which split is disturbed, and how much of it."""

import json
import math
from dataclasses import replace

import pytest
import torch

from dcgan_lab.core.config import EvaluateConfig
from dcgan_lab.core.errors import EvaluationError
from dcgan_lab.core.paths import classifier_checkpoint
from dcgan_lab.data.splits import load_split
from dcgan_lab.evaluation.fidelity import extractor_kwargs
from dcgan_lab.validation.checks import BATCH_SIZE, FID_RISES, RECALL_FALLS
from dcgan_lab.validation.disturb import disturbances, one_thread
from dcgan_lab.validation.extractor import batch_size_check, held_out_split, load_inputs, validate_extractor
from helpers import held_out_prepared, tiny_classifier

CPU = torch.device("cpu")
CFG = EvaluateConfig(n_real=60, batch_size=32, is_splits=2, kid_subset_size=20, precision_recall=False)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    data = held_out_prepared(tmp_path_factory.mktemp("validation"), n=60)
    clf = tiny_classifier(classifier_checkpoint(data.parent / "classifier"), data)
    return data, extractor_kwargs(CFG, clf)


def test_the_features_do_not_depend_on_the_batch_size_on_the_real_extractor(inputs):
    data, kwargs = inputs
    r = batch_size_check(load_split(data, "val")[0][:40], kwargs, 16, CPU)
    assert r["ok"] and r["batch_sizes"] == [1, 16] and r["n_images"] == 40
    assert 0 <= r["max_abs_diff"] <= r["tolerance"] and r["tolerance"] >= 1e-5


def test_every_disturbance_is_scored_at_every_level_against_the_floor_and_checked(inputs):
    data, kwargs = inputs
    split, held_out, reference, sha = load_inputs(CFG, data)
    with one_thread():  # 30 torch-fidelity calls on 60 images: 5 s, where 2 threads on busy cores take 15 s
        r = validate_extractor("a-second-space", kwargs, held_out, reference, sha, CFG, CPU)
    json.dumps(r, allow_nan=False)  # metrics/extractor.json: nulls, never NaN
    table = disturbances(60, 10)
    assert list(r["disturbances"]) == [d.name for d in table] and r["n"] == 60
    for d in table:
        s = r["disturbances"][d.name]
        assert s["levels"] == list(d.levels) and s["parameter"] == d.parameter
        for key in ("fid", "kid", "precision", "recall", "fid_over_floor"):
            assert len(s[key]) == len(d.levels), (d.name, key)
        assert s["fid_over_floor"][0] == 1.0 and s["fid_over_floor"][1] == pytest.approx(s["fid"][1] / s["fid"][0])
        assert all(0 <= v <= 1 for v in s["precision"] + s["recall"])  # computed, though CFG turns them off
        if not d.subset:  # level 0 is the undisturbed split: the floor, scored once
            assert s["fid"][0] == r["floor_fid"] and s["n"] == 60
    assert r["disturbances"]["mode_dropping"]["n"] == 12  # the 2 kept classes' 6 images each, at every level
    assert r["disturbances"]["mode_dropping"]["fid"][0] != r["floor_fid"]  # its own floor, at its own n
    assert set(r["checks"]) == {FID_RISES, RECALL_FALLS, BATCH_SIZE} and r["checks"][BATCH_SIZE]["ok"]
    assert r["ok"] == (r["failed_checks"] == []) and len(r["warnings"]) == len(r["failed_checks"])
    assert all(w.startswith("warning: a-second-space: ") for w in r["warnings"])
    mild = sorted(s["fid_over_floor"][1] for s in r["disturbances"].values())
    assert math.isclose(r["sensitivity"], mild[len(mild) // 2])


def test_the_disturbed_split_is_held_out_and_not_the_one_scored_against(inputs):
    splits = {"splits": {"train": {}, "val": {}, "test": {}}, "dataset": "mnist"}
    assert held_out_split(splits, "test") == "val" and held_out_split(splits, "val") == "test"
    with pytest.raises(EvaluationError, match=r"^evaluate\.real_split: 'test'; validate_extractor needs a second "
                                              r"held-out split to disturb, and cifar10 has only train, test$"):
        held_out_split({"splits": {"train": {}, "test": {}}, "dataset": "cifar10"}, "test")
    data, _ = inputs
    split, (images, labels), reference, _ = load_inputs(replace(CFG, n_real=25, real_split="val"), data)
    assert split == "test" and len(images) == len(labels) == len(reference) == 25  # n: at most the reference's
    assert torch.equal(images, load_split(data, "test")[0][:25])
