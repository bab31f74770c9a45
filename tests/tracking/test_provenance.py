"""Run provenance as MLflow tags, against real git: the machine, the data, the commit, the DVC experiment and
the params it changed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import torch
import yaml

from dcgan_lab.tracking.provenance import changed_params, experiment_tags, format_changes, run_tags, system_tags


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
