"""Run provenance as MLflow tags, against real git: the machine, the data, the commit, the DVC experiment and
the params it changed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from dcgan_lab.core.config import AblationConfig
from dcgan_lab.core.errors import DataError
from dcgan_lab.tracking.provenance import (changed_params, experiment_tags, format_changes, run_tags, split_sha256s,
                                           study_id, system_tags)


def test_changed_params_names_changed_added_and_removed_keys():
    base = {"model": {"g_width": 32, "d_width": 32}, "train": {"epochs": 2}, "ablation": {"seeds": [0]}}
    now = {"model": {"g_width": 64, "d_width": 32}, "train": {"epochs": 3, "loss": "hinge"}, "ablation": {}}
    changes = changed_params(now, base)
    assert changes == {"ablation.seeds": None, "model.g_width": 64, "train.epochs": 3, "train.loss": "hinge"}
    assert format_changes(changes) == "ablation.seeds=<removed>, model.g_width=64, train.epochs=3, train.loss=hinge"
    assert format_changes({}) == "none"
    long = format_changes({f"k{i}": "v" * 50 for i in range(200)})
    assert len(long) == 5000 and long.endswith("...")  # under MLflow's limit on a tag's length


def test_system_tags_name_torch_and_the_device():
    tags = system_tags()
    assert tags["system.torch"] == torch.__version__
    assert tags["system.cuda"] == (torch.version.cuda or "none")
    assert tags["system.device"].startswith("cpu") != torch.cuda.is_available()


def _git_repo(path, params: dict, name: str = "params.yaml") -> str:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q"], cwd=path, check=True)
    (path / name).parent.mkdir(parents=True, exist_ok=True)
    (path / name).write_text(yaml.safe_dump(params))
    subprocess.run(git + ["add", name], cwd=path, check=True)
    subprocess.run(git + ["commit", "-qm", "base"], cwd=path, check=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True).stdout.strip()


def test_experiment_tags_name_the_dvc_experiment_its_baseline_and_changed_params(tmp_path):
    base = _git_repo(tmp_path, {"model": {"g_width": 32}, "train": {"epochs": 2, "lr_g": 2.0e-4}})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"model": {"g_width": 64}, "train": {"epochs": 3,
                                                                                              "lr_g": 2.0e-4}}))
    plain = experiment_tags({}, tmp_path, Path("params.yaml"))
    assert plain == {"git_commit": base, "params_changed": "model.g_width=64, train.epochs=3"}
    tags = experiment_tags({"DVC_EXP_NAME": "shaky-oath", "DVC_EXP_BASELINE_REV": base}, tmp_path, Path("params.yaml"))
    assert tags == {"git_commit": base, "dvc_exp_name": "shaky-oath", "dvc_exp_baseline_rev": base,
                    "params_changed": "model.g_width=64, train.epochs=3"}
    (tmp_path / "data/prepared").mkdir(parents=True)
    (tmp_path / "data/prepared/manifest.json").write_text("{}")
    assert run_tags({}, tmp_path, Path("params.yaml"), Path("data/prepared"))["data.manifest_sha256"] == (
        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")  # sha256 of "{}"
    assert "data.manifest_sha256" not in run_tags({}, tmp_path, Path("params.yaml"))  # a stage without data


def test_changed_params_compare_the_file_the_stage_read_wherever_it_lives_in_the_repo(tmp_path):
    base = _git_repo(tmp_path, {"train": {"epochs": 2}}, name="conf/study.yaml")
    (tmp_path / "conf/study.yaml").write_text(yaml.safe_dump({"train": {"epochs": 5}}))
    (tmp_path / "stage").mkdir()  # the stage runs in a subfolder of the repository
    tags = experiment_tags({}, tmp_path / "stage", Path("../conf/study.yaml"))
    assert tags == {"git_commit": base, "params_changed": "train.epochs=5"}
    (tmp_path / "untracked.yaml").write_text(yaml.safe_dump({"train": {"epochs": 9}}))
    assert experiment_tags({}, tmp_path, Path("untracked.yaml")) == {"git_commit": base}  # no version to compare
    assert experiment_tags({}, tmp_path.parent / "nowhere", Path("params.yaml")) == {}  # not a git repository


def test_the_study_id_names_the_design_and_the_data_not_the_seeds():
    design, data = AblationConfig(), {"train": "a" * 64, "test": "b" * 64}
    sid = study_id(design, data)
    assert len(sid) == 10 and int(sid, 16) >= 0  # short, hex
    assert study_id(AblationConfig(), dict(reversed(data.items()))) == sid  # stable: same design, same data
    assert study_id(AblationConfig(seeds=(0, 1, 2, 3, 4)), data) == sid  # more seeds: the same study, extended
    changed = [AblationConfig(margin=2.0), AblationConfig(primary="fid"), AblationConfig(alpha=0.01),
               AblationConfig(variants=("radford", "final"))]
    ids = {study_id(c, data) for c in changed} | {study_id(design, {**data, "test": "c" * 64}),
                                                    study_id(design, {"train": "a" * 64})}
    assert len(ids) == 6 and sid not in ids  # another margin, primary, alpha, variants or data: another study


def test_split_sha256s_reads_the_manifest_and_a_missing_one_says_which_stage_makes_it(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"splits": {"train": {"n": 2, "sha256": "aa"},
                                                                   "test": {"n": 1, "sha256": "bb"}}}))
    assert split_sha256s(tmp_path) == {"train": "aa", "test": "bb"}
    with pytest.raises(DataError, match=r"manifest\.json: not found; run `dvc repro prepare` first$"):
        split_sha256s(tmp_path / "nowhere")
    (tmp_path / "manifest.json").write_text("{}")
    with pytest.raises(DataError, match=r"manifest\.json: unreadable \(KeyError: it has no 'splits' entry\); "
                                        r"rerun `dvc repro prepare`$"):
        split_sha256s(tmp_path)
