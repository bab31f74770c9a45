"""MLflow tracking and run provenance, against real sqlite stores, real git and real subprocesses."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from contextlib import closing

import torch
import yaml

from dcgan_lab.provenance import changed_params, experiment_tags, format_changes, run_tags, system_tags
from dcgan_lab.tracking import RunLogger, project_root, tracking_uri


def test_changed_params_names_changed_added_and_removed_keys():
    base = {"model": {"g_width": 32, "d_width": 32}, "train": {"epochs": 2}, "ablation": {"seeds": [0]}}
    now = {"model": {"g_width": 64, "d_width": 32}, "train": {"epochs": 3, "loss": "hinge"}, "ablation": {}}
    changes = changed_params(now, base)
    assert changes == {"ablation.seeds": None, "model.g_width": 64, "train.epochs": 3, "train.loss": "hinge"}
    assert format_changes(changes) == "ablation.seeds=<removed>, model.g_width=64, train.epochs=3, train.loss=hinge"
    assert format_changes({}) == "none"


def test_project_root_sees_through_dvc_experiment_temp_dirs(tmp_path):
    assert project_root(tmp_path / ".dvc" / "tmp" / "exps" / "tmpab12cd") == tmp_path.resolve()
    assert project_root(tmp_path) == tmp_path.resolve()


def test_tracking_uri_is_absolute_and_env_wins(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri(tmp_path / ".dvc/tmp/exps/tmpx") == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/elsewhere.db")
    assert tracking_uri(tmp_path) == f"sqlite:///{tmp_path}/elsewhere.db"


def test_system_tags_name_torch_and_the_device():
    tags = system_tags()
    assert tags["system.torch"] == torch.__version__
    assert tags["system.cuda"] == (torch.version.cuda or "none")
    assert tags["system.device"].startswith("cpu") != torch.cuda.is_available()


def _git_repo(path, params: dict) -> str:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q"], cwd=path, check=True)
    (path / "params.yaml").write_text(yaml.safe_dump(params))
    subprocess.run(git + ["add", "params.yaml"], cwd=path, check=True)
    subprocess.run(git + ["commit", "-qm", "base"], cwd=path, check=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True).stdout.strip()


def test_experiment_tags_name_the_dvc_experiment_its_baseline_and_changed_params(tmp_path):
    base = _git_repo(tmp_path, {"model": {"g_width": 32}, "train": {"epochs": 2, "lr_g": 2.0e-4}})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"model": {"g_width": 64}, "train": {"epochs": 3,
                                                                                              "lr_g": 2.0e-4}}))
    plain = experiment_tags({}, tmp_path)
    assert plain == {"git_commit": base, "params_changed": "model.g_width=64, train.epochs=3"}
    tags = experiment_tags({"DVC_EXP_NAME": "shaky-oath", "DVC_EXP_BASELINE_REV": base}, tmp_path)
    assert tags == {"git_commit": base, "dvc_exp_name": "shaky-oath", "dvc_exp_baseline_rev": base,
                    "params_changed": "model.g_width=64, train.epochs=3"}
    (tmp_path / "data/prepared").mkdir(parents=True)
    (tmp_path / "data/prepared/manifest.json").write_text("{}")
    assert run_tags({}, tmp_path)["data.manifest_sha256"] == (
        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")  # sha256 of "{}"


WRITER = textwrap.dedent("""
    import sys
    from dcgan_lab.tracking import RunLogger
    root, k = sys.argv[1], int(sys.argv[2])
    logger = RunLogger.start(f"v{k}", k, {f"p{i}": i for i in range(150)}, root=root)
    for step in range(0, 300, 10):  # many small transactions, as a training run makes
        steps = list(range(step, step + 10))
        logger.log_metrics([{"loss": s * k, "other": 1.0} for s in steps], steps)
        logger.set_tags({"last_step": step})
    logger.finish()
    print(logger.run_id)
""")


def test_concurrent_writers_on_a_new_sqlite_store_lose_nothing(tmp_path, monkeypatch):
    """Four processes create the store, the experiment and their runs at once, as `dvc queue start -j 4`
    would: no 'database is locked', no schema race, every metric there once."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(k)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for k in range(1, 5)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err[-2000:] for _, err in outs]
    assert not any("database is locked" in err for _, err in outs)
    run_ids = [out.strip().splitlines()[-1] for out, _ in outs]
    logger = RunLogger(run_ids[0], tracking_uri(tmp_path))
    client = logger.client
    (exp,) = [e for e in client.search_experiments() if e.name != "Default"]
    assert exp.name == "dcgan-lab"
    runs = client.search_runs([exp.experiment_id])
    assert sorted(r.info.run_id for r in runs) == sorted(run_ids)
    for r in runs:
        k = int(r.data.tags["seed"])
        history = client.get_metric_history(r.info.run_id, "loss")
        assert sorted(m.step for m in history) == list(range(300))
        assert {m.value for m in history} == {float(s * k) for s in range(300)}
        assert len(r.data.params) == 150 and r.info.status == "FINISHED"
    with closing(sqlite3.connect(tmp_path / "mlflow.db")) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
