"""SIGTERM (a preemption, a batch scheduler) and Ctrl-C, for real: sent to `dvc repro`'s process group in
the middle of training, they make the stage write a resumable checkpoint at the step the signal arrived,
close the MLflow run as KILLED with that step, print one line and exit within seconds; the rerun resumes
from that very step and ends bitwise equal to an uninterrupted run, in the same single MLflow run."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from helpers import keep_variants, raw_params_file, repo_copy, run, shrink

pytestmark = pytest.mark.e2e
STAGE = "train@baseline-0"
TOTAL = 192  # 1024 images / batch 32 = 32 steps per epoch, 6 epochs
STOPPED = re.compile(r"^stopped: (SIGTERM|SIGINT) at step (\d+); a resumable checkpoint of that step is in "
                     r"checkpoints/baseline/seed0/state\.pt: rerun `dvc repro` to continue from step \2$")


@pytest.fixture(scope="module")
def repo(tmp_path_factory, prefix_repo):
    """A repo copy with prepared data and a classifier, and the uninterrupted run's final checkpoint."""
    raw = keep_variants(shrink(raw_params_file()), ["baseline"])
    raw["train"].update(max_steps=None, epochs=6, checkpoint_every=50, eval_every=40, log_every=4)
    dst = tmp_path_factory.mktemp("signals")
    env = repo_copy(dst, raw, prefix_repo)
    run(["dvc", "repro", STAGE], dst, env)
    return dst, env, torch.load(dst / "models/baseline/seed0/checkpoint.pt", weights_only=True)


@pytest.fixture
def fresh(repo, request):
    """The repo with no training run yet (models and resumable checkpoints removed) and an MLflow store of
    the test's own: MLflow caches a store per URI in this process, so one file must not be deleted and
    made anew under the same URI."""
    dst, env, final = repo
    for out in ("models/baseline", "checkpoints/baseline"):
        subprocess.run(["rm", "-rf", str(dst / out)], check=True)
    store = dst / f"{re.sub(r'[^A-Za-z0-9]', '_', request.node.name)}.db"
    # DVC runs a stage through $SHELL -c; dash (/bin/sh) does not exec a lone command as bash does, and dies
    # on Ctrl-C before the stage has stopped. The stage commands' `exec` must cover that shell too.
    return dst, {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{store}", "SHELL": "/bin/sh"}, final, store


def signal_mid_training(dst: Path, env: dict, store: Path, signums: list[signal.Signals], rng: random.Random):
    """Start `dvc repro`, wait until training logs its first steps to MLflow, send the signals to the whole
    process group (as a terminal's Ctrl-C or a scheduler does) a random moment later; returns dvc's exit
    code, its stderr, and the seconds from the first signal to the stage's exit."""
    log = dst / "repro.err"
    with open(log, "w") as err:
        proc = subprocess.Popen(["dvc", "repro", STAGE], cwd=dst, env=env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 300
        while "fid_quick" not in _logged_metrics(store):  # past the first quick FID (step 40), mid-epoch soon
            assert proc.poll() is None, "dvc repro ended before training got going:\n" + log.read_text()
            assert time.monotonic() < deadline, "training did not start within 300 s"
            time.sleep(0.05)
        time.sleep(rng.uniform(0, 0.5))
        sent = time.monotonic()
        for signum in signums:  # back to back: a second one lands while the first is being handled
            os.killpg(proc.pid, signum)
        returncode = proc.wait(timeout=60)
        _wait_for_group(proc.pid, deadline=time.monotonic() + 60)  # the stage, whatever dvc did
        seconds = time.monotonic() - sent
    return returncode, log.read_text(), seconds


def _logged_metrics(db: Path) -> set[str]:
    import sqlite3

    if not db.exists():
        return set()
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return {row[0] for row in conn.execute("SELECT DISTINCT key FROM metrics")}
    except sqlite3.Error:
        return set()


def _wait_for_group(pgid: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError("the stage did not exit within 60 s of the signal")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_checkpoints_the_current_step_and_the_rerun_resumes_there_bitwise(fresh, signum):
    from mlflow.tracking import MlflowClient

    dst, env, final, store = fresh
    returncode, stderr, seconds = signal_mid_training(dst, env, store, [signum], random.Random(os.getpid()))

    (line,) = [line for line in stderr.splitlines() if line.startswith("stopped:")]
    match = STOPPED.match(line)
    assert match and match.group(1) == signum.name, line
    step = int(match.group(2))
    assert 40 <= step < TOTAL and "Traceback" not in stderr
    assert seconds < 15, f"took {seconds:.1f} s to stop"
    assert returncode != 0  # SIGTERM ends dvc too; on Ctrl-C dvc waits and reports the stage's code
    if signum == signal.SIGINT:
        assert f"exited with {128 + signum}" in stderr
    # The checkpoint is of the very step the signal arrived at, not of the last periodic one (every 50).
    assert json.loads((dst / "checkpoints/baseline/seed0/state.json").read_text())["step"] == step
    assert not (dst / "models/baseline/seed0").exists(), "stopped before the end: no model outputs"
    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    (killed,) = client.search_runs([client.get_experiment_by_name("dcgan-lab").experiment_id])
    assert killed.info.status == "KILLED" and killed.data.tags["killed_at_step"] == str(step), stderr
    assert max(m.step for m in client.get_metric_history(killed.info.run_id, "loss_d")) == step

    resumed = run(["dvc", "repro", STAGE], dst, env)
    assert f"baseline seed 0: resuming from step {step} " in resumed.stderr
    got = torch.load(dst / "models/baseline/seed0/checkpoint.pt", weights_only=True)
    for key in ("generator", "discriminator", "generator_ema"):
        ref, new = final[key]["state_dict"], got[key]["state_dict"]
        assert ref.keys() == new.keys() and all(torch.equal(ref[k], new[k]) for k in ref), key
    (done,) = client.search_runs([client.get_experiment_by_name("dcgan-lab").experiment_id])
    assert done.info.run_id == killed.info.run_id and done.info.status == "FINISHED"
    assert sorted(m.step for m in client.get_metric_history(done.info.run_id, "loss_d")) == list(range(1, TOTAL + 1))


def test_a_second_ctrl_c_stops_at_once(fresh):
    """Two Ctrl-C in a row: the first asks for a checkpoint, the second does not wait for it. One line, exit
    130, and whatever checkpoint was there before is still whole."""
    dst, env, _, store = fresh
    returncode, stderr, seconds = signal_mid_training(dst, env, store, [signal.SIGINT, signal.SIGINT],
                                                      random.Random(1))
    stopped = [line for line in stderr.splitlines() if line.startswith("stopped:")]
    assert len(stopped) == 1 and "Traceback" not in stderr, stderr
    assert seconds < 15
    assert returncode != 0
    state = dst / "checkpoints/baseline/seed0/state.pt"
    if state.exists():  # a periodic checkpoint, or the first signal's, written whole before the second came
        blob = torch.load(state, weights_only=True)
        assert blob["state"]["step"] == json.loads(state.with_suffix(".json").read_text())["step"]
    assert not list(state.parent.glob(".*")) if state.parent.exists() else True, "no temp files left behind"
