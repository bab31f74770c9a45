"""The real split the generators are scored against: loading it, the reference stage's floor and cached features in
both feature spaces, and what an evaluate@ stage checks before it reads them; all with the real torch-fidelity on
noise images and tiny real classifiers."""

from dataclasses import replace

import pytest
import torch
import torch_fidelity

from dcgan_lab.core.config import EvaluateConfig
from dcgan_lab.core.errors import CheckpointError, DataError, EvaluationError
from dcgan_lab.core.paths import EvalPaths, classifier_checkpoint
from dcgan_lab.data.splits import load_split
from dcgan_lab.evaluation.fidelity import Uint8Images, cached_files, extractor_kwargs, reference_cache_name
from dcgan_lab.evaluation.reference import (check_features, load_real, reference_stage, second_checkpoint,
                                            second_reference, second_scores)
from dcgan_lab.evaluation.second_space import EXTRACTOR_NAME, second_kwargs
from helpers import held_out_prepared, prepared, tiny_classifier, tiny_second_classifier

CPU = torch.device("cpu")
CFG = EvaluateConfig(n_real=80, batch_size=32, is_splits=2, kid_subset_size=20, seed=3)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    data = held_out_prepared(root / "data", n=80)
    tiny_classifier(classifier_checkpoint(root / "models/classifier"), data)
    tiny_second_classifier(classifier_checkpoint(root / "models/second_classifier"), data)
    return root, data


def test_a_real_split_the_data_set_lacks_is_named(tmp_path):
    data = prepared(tmp_path)  # a train split only
    with pytest.raises(EvaluationError, match=r"^evaluate\.real_split: noise has no 'test' split; allowed here: $"):
        load_real(EvaluateConfig(), data)


def test_the_second_checkpoint_is_read_when_the_second_space_is_on_and_only_then(workdir, tmp_path):
    root, _ = workdir
    assert second_checkpoint(replace(CFG, second_extractor=False), None) is None
    assert second_checkpoint(CFG, root / "models/second_classifier") == root / "models/second_classifier/classifier.pt"
    with pytest.raises(EvaluationError, match=r"^evaluate\.second_extractor: true needs the second classifier "
                                              r"\(--second-classifier, e\.g\. models/second_classifier\); allowed "
                                              r"without it: false$"):
        second_checkpoint(CFG, None)
    with pytest.raises(CheckpointError, match="second classifier checkpoint not found"):
        second_checkpoint(CFG, tmp_path)


def test_second_space_scores_are_torch_fidelitys_own_in_that_space(workdir, tmp_path):
    root, data = workdir
    second = classifier_checkpoint(root / "models/second_classifier")
    fake, real = load_split(data, "val")[0], load_split(data, "test")[0]
    ours = second_scores(fake, real, second, CFG, CPU, "sha-x", tmp_path)
    direct = torch_fidelity.calculate_metrics(
        input1=Uint8Images(fake), input2=Uint8Images(real), fid=True, isc=True, kid=True, prc=True, isc_splits=2,
        kid_subset_size=20, batch_size=32, rng_seed=3, cuda=False, cache=False, save_cpu_ram=True, verbose=False,
        **second_kwargs(second))
    assert ours == {"second_fid": float(direct["frechet_inception_distance"]),
                    "second_kid_mean": float(direct["kernel_inception_distance_mean"]),
                    "second_is_mean": float(direct["inception_score_mean"]),
                    "second_precision": float(direct["precision"]), "second_recall": float(direct["recall"])}
    off = second_scores(fake, real, second, replace(CFG, precision_recall=False), CPU, "sha-x", tmp_path)
    assert set(off) == {"second_fid", "second_kid_mean", "second_is_mean"}  # and the cached real side reused
    assert off["second_fid"] == ours["second_fid"]


def test_the_reference_stage_caches_and_floors_both_spaces_and_evaluate_checks_both(workdir, params, tmp_path):
    root, data = workdir
    p = replace(params, evaluate=replace(params.evaluate, n_real=80))
    features, second = tmp_path / "features", root / "models/second_classifier"
    reference = reference_stage(p, data, root / "models/classifier", EvalPaths(tmp_path / "metrics"), features, second)
    ckpt = classifier_checkpoint(second)
    assert reference["second"] == second_reference(load_split(data, "test")[0][:80], ckpt, p.evaluate, CPU)
    assert reference["second"]["extractor"] == EXTRACTOR_NAME and reference["second"]["fid_half_vs_half"] > 0
    assert reference["second"]["test_accuracy"] is not None
    assert (tmp_path / "metrics/reference.json").exists()
    sha = load_real(p.evaluate, data)[1]
    names = [reference_cache_name(k, sha, 80) for k in (extractor_kwargs(p.evaluate, classifier_checkpoint(
        root / "models/classifier")), second_kwargs(ckpt))]
    assert all(cached_files(n, features) for n in names)
    check_features(p.evaluate, data, classifier_checkpoint(root / "models/classifier"), features, ckpt)
    for f in cached_files(names[1], features):
        f.unlink()
    with pytest.raises(DataError, match=rf"no cached features of the test split under this extractor \({names[1]}\); "
                                        r"run `dvc repro reference` first$"):
        check_features(p.evaluate, data, classifier_checkpoint(root / "models/classifier"), features, ckpt)
    off = reference_stage(replace(p, evaluate=replace(p.evaluate, second_extractor=False)), data,
                          root / "models/classifier", EvalPaths(tmp_path / "metrics"), features)
    assert "second" not in off and not cached_files(names[1], features)  # nothing stale beside the first's
