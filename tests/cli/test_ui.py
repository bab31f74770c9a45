"""`dcgan-lab ui` (what `make ui` runs): it serves the project's MLflow store and prints the link that opens
the experiment on its training runs; in a real headless Chromium that link shows the runs table, where the
experiment's bare address shows MLflow 3's GenAI overview."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from helpers import error_line, free_port

DCGAN_LAB = str(Path(sys.executable).parent / "dcgan-lab")


def test_without_a_store_it_says_how_to_make_one(tmp_path):
    result = subprocess.run([DCGAN_LAB, "ui"], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "MLFLOW_TRACKING_URI": ""})
    assert result.returncode == 2
    assert re.fullmatch(r"error: ui: no MLflow store at \S+/mlflow\.db yet; `make repro` \(or any stage that logs\) "
                        r"makes it", error_line(result))
    assert not (tmp_path / "mlflow.db").exists()


def test_it_serves_the_store_and_its_link_opens_the_training_runs(tmp_path, monkeypatch):
    from dcgan_lab.tracking.runs import RunLogger

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    env = dict(os.environ)
    run = RunLogger.start("final", 0, {"train.epochs": 2}, {}, root=tmp_path)
    run.log_metrics([{"fid": 4.5}], [0])
    run.finish()
    port = free_port()
    proc = subprocess.Popen([DCGAN_LAB, "ui", "--port", str(port)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        line = proc.stdout.readline().strip()
        link = f"http://127.0.0.1:{port}/#/experiments/{run.client.get_run(run.run_id).info.experiment_id}" \
               "?workflowType=machine_learning"
        assert line == f"MLflow UI for dcgan-lab, its training runs: {link}"
        deadline = time.time() + 120
        while True:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read() == b"OK":
                    break
            except OSError:
                assert proc.poll() is None and time.time() < deadline, "mlflow ui did not come up"
                time.sleep(0.5)
        if not (shutil.which("chromium") and shutil.which("chromedriver")):
            pytest.skip("no headless browser: chromium and chromedriver are not on PATH")
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium")
        for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--no-first-run", "--window-size=2000,1000"):
            options.add_argument(arg)
        browser = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
        try:
            browser.implicitly_wait(30)
            browser.get(link)
            WebDriverWait(browser, 60).until(lambda d: "/runs?" in d.current_url)
            browser.find_element(By.XPATH, "//a[normalize-space(.)='final-seed0']")  # the runs table
            browser.get(link.split("?")[0])  # the bare address: MLflow 3.17's GenAI overview, which the link avoids
            WebDriverWait(browser, 60).until(lambda d: "workflowType=genai" in d.current_url)
        finally:
            browser.quit()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
