"""DVC experiments end to end: `dvc exp run --queue` of three param sets, `dvc queue start -j 2`, and every
run in the repository's one MLflow store, tagged with its experiment; exp show / metrics diff / plots
diff; push and pull through the default local remote. Real DVC, real MLflow (sqlite), tiny params."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import ROOT, commit, keep_variants, raw_params_file, repo_copy, run, shrink

pytestmark = pytest.mark.e2e

# name -> the -S overrides; each touches different stages (see EXPECTED_TRAIN_RUNS): one variant, the other,
# both. Three on two workers: the queue runs two at once and a third after one of them, in the time of two.
EXPERIMENTS = {
    "cutout": ["variants.final.augment.cutout=0.3"],
    "lr": ["train.lr_g=1.0e-4"],
    "bn": ["variants.baseline.g_batch_norm=true"],
}
EXPECTED_TRAIN_RUNS = {"cutout": ["final"], "lr": ["baseline", "final"], "bn": ["baseline"]}
CHANGED = {"cutout": "variants.final.augment.cutout=0.3", "lr": "train.lr_g=0.0001",
           "bn": "variants.baseline.g_batch_norm=True"}


def wait_for_queue(dst, env, timeout=900):
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = run(["dvc", "queue", "status"], dst, env).stdout
        if not any(word in status for word in ("Queued", "Running")):
            return status
        time.sleep(5)
    raise AssertionError(f"dvc queue did not finish in {timeout} s:\n{status}")


def start_queue(dst, env, workers: int) -> str:
    """`dvc queue start -j N`, its output to a file, not a pipe. The command returns at once, but the worker
    processes it daemonizes inherit its stdout: a captured pipe stays open until they exit, and a worker that hangs
    in its own shutdown (dvc-task's monitor can send "shutting down due to empty queue" while a task still runs;
    seen here once, every experiment done) would hang the test until its timeout."""
    log = dst / "queue-start.log"
    with open(log, "w") as out:
        subprocess.run(["dvc", "queue", "start", "-j", str(workers)], cwd=dst, env=env, stdout=out,
                       stderr=subprocess.STDOUT, timeout=120, check=True)
    return log.read_text()


def stop_workers(dst, grace: float = 60) -> int:
    """Wait up to `grace` seconds for the queue's workers to exit (they do once the queue is empty), then end any
    left, so no test leaves processes behind. Returns how many had to be ended."""
    pids = [int(p.read_text()) for p in (dst / ".dvc" / "tmp" / "exps" / "celery").glob("dvc-exp-worker-*.pid")]

    def alive(pid: int) -> bool:  # running, not a zombie its parent has yet to reap
        stat = Path(f"/proc/{pid}/stat")
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (FileNotFoundError, ProcessLookupError):
            return False

    deadline = time.time() + grace
    while any(alive(p) for p in pids) and time.time() < deadline:
        time.sleep(1)
    left = [p for p in pids if alive(p)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    return len(left)


@pytest.fixture(scope="module")
def queued(tmp_path_factory, prefix_repo):
    dst = tmp_path_factory.mktemp("exprepo")
    raw = keep_variants(shrink(raw_params_file()), ["baseline", "final"])  # two variants keep it quick
    env = repo_copy(dst, raw, prefix_repo)
    run(["dvc", "repro"], dst, env)
    baseline = commit(dst, env, "baseline results")
    for name, overrides in EXPERIMENTS.items():
        run(["dvc", "exp", "run", "--queue", "-n", name, *(a for o in overrides for a in ("-S", o))], dst, env)
    started = time.time()
    # Two workers on this 2-core machine: one thread each, or oneDNN's threads fight over the cores.
    assert "Started '2' new experiments task queue workers" in start_queue(dst, {**env, "OMP_NUM_THREADS": "1"}, 2)
    try:
        status = wait_for_queue(dst, env)
    finally:
        if ended := stop_workers(dst):
            print(f"{ended} queue worker(s) still running after the queue emptied; ended")
    logs = {name: run(["dvc", "queue", "logs", name], dst, env, check=False).stdout for name in EXPERIMENTS}
    return dst, env, baseline, status, logs, time.time() - started


def test_every_queued_experiment_succeeds_without_database_locks(queued):
    dst, env, _, status, logs, seconds = queued
    states = ("Queued", "Running", "Success", "Failed")
    rows = [line.split() for line in status.splitlines() if line.split()[-1:] and line.split()[-1] in states]
    assert sorted(r[1] for r in rows) == sorted(EXPERIMENTS), status
    assert all(r[-1] == "Success" for r in rows), status
    for name, log in logs.items():
        assert "database is locked" not in log and "Traceback" not in log, log[-3000:]
    print(f"queue of {len(EXPERIMENTS)} with -j 2: {seconds:.0f} s")


def test_each_experiment_logged_exactly_its_runs_into_the_repository_store(queued):
    from mlflow.tracking import MlflowClient

    dst, _, baseline, _, _, _ = queued
    assert not list((dst / ".dvc" / "tmp").rglob("mlflow.db"))  # nothing logged inside DVC's temp copies
    client = MlflowClient(tracking_uri=f"sqlite:///{dst / 'mlflow.db'}")
    exp = client.get_experiment_by_name("dcgan-lab")
    assert Path(exp.artifact_location.removeprefix("file://")) == dst / "mlartifacts"
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    by_exp: dict[str | None, list] = {}
    for r in runs:
        assert r.info.status == "FINISHED", r.data.tags
        by_exp.setdefault(r.data.tags.get("dvc_exp_name"), []).append(r)
    assert set(by_exp) == {None, *EXPERIMENTS}  # None: the plain `dvc repro` of the baseline
    assert sorted(r.data.tags["variant"] for r in by_exp[None]) == ["ablation", "baseline", "final"]
    for name, expected in EXPECTED_TRAIN_RUNS.items():
        mine = by_exp[name]
        assert sorted(r.data.tags["variant"] for r in mine) == sorted(["ablation", *expected]), name
        for r in mine:
            assert r.data.tags["dvc_exp_baseline_rev"] == baseline and r.data.tags["git_commit"] == baseline
            assert r.data.tags["params_changed"] == CHANGED[name]
            assert r.data.tags["system.torch"] and r.data.tags["data.manifest_sha256"]
            assert Path(r.info.artifact_uri.removeprefix("file://")).is_relative_to(dst / "mlartifacts")
    # Every training run was scored once by its own experiment (no run lost, no score duplicated) and
    # holds its generator as an MLflow model.
    for r in (r for r in runs if r.data.tags["variant"] != "ablation"):
        assert [m.step for m in client.get_metric_history(r.info.run_id, "fid")] == [0], r.data.tags
        assert r.data.tags["model.uri"].startswith("models:/")
        assert len(client.get_metric_history(r.info.run_id, "loss_g")) == 12
    # Each experiment's ablation run holds that experiment's report numbers.
    shown = json.loads(run(["dvc", "exp", "show", "--json"], dst, queued[1]).stdout)
    (base,) = [b for b in shown if b["experiments"]]  # the other entry is the workspace
    assert base["rev"] == baseline
    exps = {e["name"]: e["revs"][0] for e in base["experiments"]}
    for name in EXPERIMENTS:
        summary = exps[name]["data"]["metrics"]["metrics/ablation.json"]["data"]
        (ablation,) = [r for r in by_exp[name] if r.data.tags["variant"] == "ablation"]
        assert ablation.data.metrics["final.fid_mean"] == pytest.approx(summary["final"]["fid_mean"])


def test_exp_show_and_metrics_diff_and_plots_diff_compare_experiments(queued):
    dst, env, _, _, _, _ = queued
    table = run(["dvc", "exp", "show", "--csv", "--no-pager"], dst, env).stdout
    header, *lines = table.splitlines()
    for column in ("Experiment", "final.seed0.fid", "final.seed0.is_mean", "final.fid_mean", "train.lr_g",
                   "variants.final.augment.cutout"):
        assert column in header.split(","), header
    assert {name for name in EXPERIMENTS if any(line.startswith(name + ",") or f",{name}," in line
                                                 for line in lines)} == set(EXPERIMENTS)
    diff = json.loads(run(["dvc", "metrics", "diff", "cutout", "lr", "--json"], dst, env).stdout)
    fid = diff["metrics/eval.json"]["final.seed0.fid"]
    assert fid["old"] != fid["new"] and fid["diff"] == pytest.approx(fid["new"] - fid["old"])
    params = json.loads(run(["dvc", "params", "diff", "cutout", "lr", "--json"], dst, env).stdout)["params.yaml"]
    assert (params["train.lr_g"]["old"], params["train.lr_g"]["new"]) == (2.0e-4, 1.0e-4)
    cutout = params["variants.final.augment.cutout"]
    assert (cutout["old"], cutout["new"]) == (0.3, 0.5)
    report = run([sys.executable, str(ROOT / "scripts/ablation.py"), "--report-only", "--grid", "train.lr_g=x"],
                 dst, env).stdout
    for name in EXPERIMENTS:
        assert f"| {name} | " in report and (dst / "reports/experiments.csv").is_file()
    assert "| lr | 0.0001 | final | 1 | " in report
    plots = run(["dvc", "plots", "diff", "cutout", "lr", "--json"], dst, env).stdout
    assert "plots/fid.png" in plots and "seed0_losses.csv" in plots


def test_push_then_pull_through_the_default_local_remote(queued):
    dst, env, _, _, _, _ = queued
    run(["dvc", "push"], dst, env)
    assert any((dst / "dvc-remote").rglob("*")), "nothing pushed to dvc-remote/"
    checkpoint = (dst / "models/final/seed0/checkpoint.pt").read_bytes()
    shutil.rmtree(dst / "models")
    shutil.rmtree(dst / ".dvc" / "cache")
    run(["dvc", "pull"], dst, env)
    assert (dst / "models/final/seed0/checkpoint.pt").read_bytes() == checkpoint
    assert "up to date" in run(["dvc", "status"], dst, env).stdout
