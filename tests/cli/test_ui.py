"""`dcgan-lab ui` (what `make ui` runs): it serves the project's MLflow store and prints the link that opens
the experiment on its training runs; in a real headless Chromium that link shows the runs table, where the
experiment's bare address shows MLflow 3's GenAI overview, and the table's "Group by" groups a study's runs
by their `variant` tag.

The store is a tiny study logged as the stages log it (RunLogger.start, as train; log_report, as report),
no pipeline. DCGAN_LAB_SCREENSHOTS=<folder> saves the grouped table there as mlflow-groups.png (the picture
in docs/images/: `DCGAN_LAB_SCREENSHOTS=docs/images pytest tests/cli/test_ui.py`)."""

from __future__ import annotations

import copy
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

from helpers import EVAL_RESULTS, error_line, free_port

DCGAN_LAB = str(Path(sys.executable).parent / "dcgan-lab")
VARIANTS = ["radford", "baseline", "final"]  # radford is the control
SEEDS = [0, 1, 2]


def test_without_a_store_it_says_how_to_make_one(tmp_path):
    result = subprocess.run([DCGAN_LAB, "ui"], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "MLFLOW_TRACKING_URI": ""})
    assert result.returncode == 2
    assert re.fullmatch(r"error: ui: no MLflow store at \S+/mlflow\.db yet; `make repro` \(or any stage that logs\) "
                        r"makes it", error_line(result))
    assert not (tmp_path / "mlflow.db").exists()


def log_study(root: Path) -> str:
    """Three variants x three seeds, each run with its FID, and the report's ablation run, in root/mlflow.db.
    Returns the experiment's id."""
    from dcgan_lab.core.config import AblationConfig
    from dcgan_lab.evaluation.results import results_table
    from dcgan_lab.reporting.report import Study, log_report, summary_json
    from dcgan_lab.tracking.provenance import study_id
    from dcgan_lab.tracking.runs import RunLogger

    results = copy.deepcopy(EVAL_RESULTS)  # baseline and final; radford a little behind baseline
    results["radford"] = {s: {**r, "fid": round(r["fid"] + 0.7, 2)} for s, r in EVAL_RESULTS["baseline"].items()}
    with pytest.MonkeyPatch.context() as env:  # root's store, whatever an earlier test left in the environment
        env.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        run_files = []
        for v in VARIANTS:
            for s in SEEDS:
                run = RunLogger.start(v, s, {"variant.name": v, "seed": s}, {}, root=root)
                run.log_metrics([{"fid": results[v][f"seed{s}"]["fid"]}], [0])
                run.finish()
                run_files.append(root / f"{v}-seed{s}.json")
                run.save_run_file(run_files[-1])
        ablation = AblationConfig(variants=tuple(VARIANTS), seeds=tuple(SEEDS), primary="fid")
        summary = summary_json(Study(results_table(results), ablation, VARIANTS))
        log_report(summary, run_files, [], {"study": study_id(ablation, {"train": "0" * 64, "test": "1" * 64})})
    return run.client.get_run(run.run_id).info.experiment_id


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """`dcgan-lab ui` serving the study's store: (its first line of output, its port, the experiment's id)."""
    root = tmp_path_factory.mktemp("ui")
    with pytest.MonkeyPatch.context() as env:
        env.delenv("MLFLOW_TRACKING_URI", raising=False)
        experiment = log_study(root)
        port = free_port()
        proc = subprocess.Popen([DCGAN_LAB, "ui", "--port", str(port)], cwd=root, env=dict(os.environ),
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        line = proc.stdout.readline().strip()
        deadline = time.time() + 120
        while True:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read() == b"OK":
                    break
            except OSError:
                assert proc.poll() is None and time.time() < deadline, "mlflow ui did not come up"
                time.sleep(0.5)
        yield line, port, experiment
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("no headless browser: chromium and chromedriver are not on PATH")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--window-size=1600,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    driver.implicitly_wait(30)
    yield driver
    driver.quit()


def open_runs_table(browser, link: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(link)
    WebDriverWait(browser, 60).until(lambda d: "/runs?" in d.current_url)
    browser.find_element(By.XPATH, "//a[normalize-space(.)='final-seed0']")  # the runs table


def link_of(ui) -> str:
    _, port, experiment = ui
    return f"http://127.0.0.1:{port}/#/experiments/{experiment}?workflowType=machine_learning"


def test_it_serves_the_store_and_prints_the_link_to_the_training_runs(ui):
    assert ui[0] == f"MLflow UI for dcgan-lab, its training runs: {link_of(ui)}"


def test_its_link_opens_the_training_runs(ui, browser):
    from selenium.webdriver.support.ui import WebDriverWait

    link = link_of(ui)
    open_runs_table(browser, link)
    browser.get(link.split("?")[0])  # the bare address: MLflow 3.17's GenAI overview, which the link avoids
    WebDriverWait(browser, 60).until(lambda d: "workflowType=genai" in d.current_url)


RUN_NAMES = """
return [...document.querySelectorAll("[role=gridcell][col-id='attributes.`Run Name`']")]
  .sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top)
  .map(cell => {
    const group = cell.querySelector("span[title]");
    return group && group.textContent.startsWith("Group: ")
      ? `${group.title} (${cell.querySelector("[role=status]").textContent})` : cell.textContent;
  });
"""


def run_name_column(browser) -> list[str]:
    """The runs table's Run Name cells, top to bottom: a run's name, or "<group> (<runs>)" for a group's row
    (one script: a Selenium lookup per cell would wait out the implicit wait on every cell that has no group)."""
    return browser.execute_script(RUN_NAMES)


def test_the_runs_table_groups_the_study_by_its_variant_tag(ui, browser):
    """Group by > Tags > variant: one row per variant with its run count and its seeds' runs under it, and the
    report's ablation run as a group of its own."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    open_runs_table(browser, link_of(ui))
    for close in browser.find_elements(By.CSS_SELECTOR, "[data-component-id='mlflow.assistant.chat_panel.close']"):
        close.click()  # MLflow 3.17's assistant panel: room for the table
    # FID as a column, so each group's row shows its mean over seeds (MLflow's default aggregation).
    browser.find_element(By.XPATH, "//button[normalize-space(.)='Columns']").click()
    search = browser.find_element(By.CSS_SELECTOR, "input[placeholder='Search columns']")
    search.send_keys("fid")
    browser.find_element(By.XPATH, "//span[contains(@class, 'tree-node-content-wrapper')][normalize-space(.)='fid']"
                         ).click()
    search.send_keys(Keys.ESCAPE)
    browser.find_element(By.XPATH, "//button[normalize-space(.)='Group by']").click()
    tags = browser.find_element(By.XPATH, "//*[@role='group'][*[normalize-space(.)='Tags']]")  # tags, then params
    offered = [item.text for item in tags.find_elements(By.CSS_SELECTOR, "[role=menuitemcheckbox]")]
    assert {"variant", "seed", "study"} <= set(offered), offered
    tags.find_element(By.XPATH, ".//*[@role='menuitemcheckbox'][normalize-space(.)='variant']").click()
    browser.find_element(By.XPATH, "//button[normalize-space(.)='Group by: variant']").send_keys(Keys.ESCAPE)

    expected = {"ablation": ["ablation"], **{v: [f"{v}-seed{s}" for s in reversed(SEEDS)] for v in VARIANTS}}
    WebDriverWait(browser, 30).until(lambda d: len(run_name_column(d)) == len(VARIANTS) * (len(SEEDS) + 1) + 2)
    rows = run_name_column(browser)
    groups = [r for r in rows if r.endswith(")")]
    assert sorted(groups) == sorted(f"{v} ({len(runs)})" for v, runs in expected.items()), rows
    for group in groups:  # each group's runs right under its row
        name = group.split(" (")[0]
        start = rows.index(group) + 1
        assert sorted(rows[start : start + len(expected[name])]) == sorted(expected[name]), rows
    if folder := os.environ.get("DCGAN_LAB_SCREENSHOTS"):
        Path(folder).mkdir(parents=True, exist_ok=True)
        browser.find_element(By.TAG_NAME, "main").screenshot(str(Path(folder) / "mlflow-groups.png"))
