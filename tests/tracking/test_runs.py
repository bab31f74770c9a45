"""MLflow runs against real sqlite stores and real subprocesses: concurrent writers, and continuing a run
after a resume. (Losing the tracking server mid-run: tests/e2e/test_server_lost.py.)"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from contextlib import closing

from dcgan_lab.tracking.runs import RunLogger
from dcgan_lab.tracking.store import tracking_uri


WRITER = textwrap.dedent("""
    import sys
    from dcgan_lab.tracking.runs import RunLogger
    root, k = sys.argv[1], int(sys.argv[2])
    logger = RunLogger.start(f"v{k}", k, {f"p{i}": i for i in range(150)}, {"writer": str(k)}, root=root)
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
        assert r.data.tags["writer"] == str(k)  # the provenance tags the stage passed
    with closing(sqlite3.connect(tmp_path / "mlflow.db")) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_resumed_run_logs_only_the_steps_it_does_not_have(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    first = RunLogger.start("final", 0, {"train.lr_g": 2.0e-4}, {"git_commit": "abc"}, root=tmp_path)
    first.log_metrics([{"loss_d": float(s)} for s in range(1, 6)], list(range(1, 6)))
    first.fail("killed")  # as if the process died after step 5
    again = RunLogger.reopen(first.run_id, "final", 0, {}, root=tmp_path)
    assert again.run_id == first.run_id and again.client.get_run(first.run_id).info.status == "RUNNING"
    again.log_metrics([{"loss_d": 10.0 * s} for s in range(4, 9)], list(range(4, 9)))  # recomputed from step 4
    again.finish()
    history = again.client.get_metric_history(first.run_id, "loss_d")
    assert sorted((m.step, m.value) for m in history) == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0), (5, 5.0),
                                                          (6, 60.0), (7, 70.0), (8, 80.0)]
    run = again.client.get_run(first.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["git_commit"] == "abc"
    assert run.data.tags["mlflow.runName"] == "final-seed0" and run.data.params["train.lr_g"] == "0.0002"


def test_a_text_lands_among_the_run_artifacts_and_is_kept_for_a_failover(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    logger = RunLogger.start("final", 0, {}, {}, root=tmp_path)
    logger.log_text('{"seed": 0}\n', "run.json")
    path = logger.client.download_artifacts(logger.run_id, "run.json", str(tmp_path))
    assert open(path).read() == '{"seed": 0}\n' and logger.record.texts == [('{"seed": 0}\n', "run.json")]


def test_a_run_missing_from_the_store_is_replaced_by_a_new_one_with_a_warning(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    logger = RunLogger.start("final", 1, {}, {}, root=tmp_path)
    run_file = tmp_path / "mlflow_run.json"
    logger.save_run_file(run_file)
    assert json.loads(run_file.read_text()) == {"run_id": logger.run_id, "tracking_uri": tracking_uri(tmp_path)}
    assert RunLogger.resume(run_file, "final", 1, {}, root=tmp_path).run_id == logger.run_id
    other = tmp_path / "other"  # another store: the recorded run is not there
    fresh = RunLogger.resume(run_file, "final", 1, {"git_commit": "abc"}, root=other)
    assert fresh.run_id != logger.run_id and fresh.client.get_run(fresh.run_id).data.tags["git_commit"] == "abc"
    err = capsys.readouterr().err
    assert err.count("logging final seed 1 into a new run") == 1
    assert f"the MLflow run recorded in {run_file} is not in sqlite:///{other.resolve()}/mlflow.db" in err
