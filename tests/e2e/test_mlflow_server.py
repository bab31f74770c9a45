"""A real `mlflow server` (sqlite backend, local artifact store, 127.0.0.1 on a free port; conftest.py);
the tiny pipeline (`dvc repro`) logs into it through MLFLOW_TRACKING_URI; the client reads everything
back over HTTP; and a headless Chromium checks the UI shows it (skipped, with the reason, without one)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from helpers import empty_mlflow_server, keep_variants, raw_params_file, repo_copy, run, shrink

pytestmark = pytest.mark.e2e
VARIANTS = ["baseline", "final"]
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def server(mlflow_server):
    """The session's `mlflow server` (conftest.py), emptied for this module."""
    empty_mlflow_server(mlflow_server)
    return mlflow_server


@pytest.fixture(scope="module")
def pipeline(server, tmp_path_factory, prefix_repo):
    dst = tmp_path_factory.mktemp("server-repo")
    raw = keep_variants(shrink(raw_params_file()), VARIANTS)
    raw["mlflow"] = {"register": True, "model_name": "dcgan-lab-generator"}
    env = repo_copy(dst, raw, prefix_repo)
    env["MLFLOW_TRACKING_URI"] = server
    run(["dvc", "repro"], dst, env)
    return dst


@pytest.fixture(scope="module")
def client(server, pipeline):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=server)


def runs_by_name(client):
    exp = client.get_experiment_by_name("dcgan-lab")
    return exp, {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}


def test_the_server_holds_runs_step_metrics_images_checkpoints_and_models(server, pipeline, client, tmp_path):
    import mlflow.pytorch

    from dcgan_lab.gan.checkpoint import load_generator

    assert not (pipeline / "mlflow.db").exists()  # everything went to the server
    exp, runs = runs_by_name(client)
    assert set(runs) == {"baseline-seed0", "final-seed0", "ablation"}
    results = json.loads((pipeline / "metrics/eval.json").read_text())
    for v in VARIANTS:
        r = runs[f"{v}-seed0"]
        assert r.info.status == "FINISHED" and r.info.artifact_uri.startswith("mlflow-artifacts:")
        assert r.data.metrics["fid"] == pytest.approx(results[v]["seed0"]["fid"])
        assert [m.step for m in client.get_metric_history(r.info.run_id, "loss_d")] == list(range(1, 13))
        assert r.data.tags["system.torch"] == torch.__version__ and "git_commit" in r.data.tags
        images = [a.path for a in client.list_artifacts(r.info.run_id, "samples")]
        assert "samples/samples.png" in images and any(p.startswith("samples/step_") for p in images)
        local = client.download_artifacts(r.info.run_id, "checkpoint/checkpoint.pt", str(tmp_path))
        assert load_generator(Path(local)).spec == load_generator(pipeline / f"models/{v}/seed0/checkpoint.pt").spec
        # The weights too: G, D and the EMA generator, every tensor, bit for bit.
        trained_file = pipeline / f"models/{v}/seed0/checkpoint.pt"
        served, trained = (torch.load(f, weights_only=True) for f in (local, trained_file))
        for net in ("generator", "discriminator", "generator_ema"):
            a, b = served[net]["state_dict"], trained[net]["state_dict"]
            assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a), (v, net)
    # The lowest-FID generator is version 1 of the registered model and generates images.
    best = min(VARIANTS, key=lambda v: results[v]["seed0"]["fid"])
    (version,) = client.search_model_versions("name = 'dcgan-lab-generator'")
    assert version.run_id == runs[f"{best}-seed0"].info.run_id
    mlflow.set_tracking_uri(server)  # the fluent API's registry follows it (MLflow 3's default is ./mlflow.db)
    g = mlflow.pytorch.load_model("models:/dcgan-lab-generator/1")
    with torch.inference_mode():
        images = g(torch.randn(4, 16))
    assert images.shape == (4, 1, 32, 32) and images.min() >= -1 and images.max() <= 1


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("no headless browser: chromium and chromedriver are not on PATH "
                    "(apt-get install -y chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--window-size=2400,1200"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.implicitly_wait(30)
    yield driver
    driver.quit()


def test_the_ui_opens_on_the_runs_with_fid_and_is_and_shows_the_sample_grid_and_architecture(server, pipeline,
                                                                                               client, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    exp, runs = runs_by_name(client)
    # The experiment says what it is (MLflow 3's experiment kind), and the link `make ui` prints (dcgan-lab ui)
    # opens it on the training runs, not on MLflow 3.17's GenAI overview (see src/dcgan_lab/cli/ui.py).
    from dcgan_lab.cli.ui import experiment_link

    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    host, port = server.removeprefix("http://").split(":")
    browser.get(experiment_link(host, int(port), exp.experiment_id))
    WebDriverWait(browser, 60).until(lambda driver: "/runs?" in driver.current_url)
    for name in ("baseline-seed0", "final-seed0"):
        browser.find_element(By.XPATH, f"//a[normalize-space(.)='{name}']")
    # Metric columns are opt-in in MLflow 3's runs table: pick FID and IS in the Columns menu.
    browser.find_element(By.XPATH, "//button[normalize-space(.)='Columns']").click()
    search = browser.find_element(By.CSS_SELECTOR, "input[placeholder='Search columns']")
    for key in ("fid", "is_mean"):
        search.send_keys(Keys.CONTROL + "a", key)
        browser.find_element(By.XPATH, f"//span[contains(@class, 'tree-node-content-wrapper')][normalize-space(.)='{key}']").click()
    search.send_keys(Keys.ESCAPE)
    headers = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "[role=columnheader]")]
    assert "fid" in headers and "is_mean" in headers, headers
    for name in ("baseline-seed0", "final-seed0"):
        link = browser.find_element(By.XPATH, f"//a[normalize-space(.)='{name}']")
        index = link.find_element(By.XPATH, "ancestor::*[@role='row']").get_attribute("row-index")
        # ag-grid splits a row into pinned and scrolling parts that share the row index.
        cells = " ".join(r.text for r in browser.find_elements(By.CSS_SELECTOR, f"[role=row][row-index='{index}']"))
        for metric in ("fid", "is_mean"):
            value = runs[name].data.metrics[metric]
            assert any(f"{value:.{d}f}".rstrip("0").rstrip(".") in cells for d in (2, 3, 4)), (metric, value, cells)

    run_id = runs["final-seed0"].info.run_id
    browser.get(f"{server}/#/experiments/{exp.experiment_id}/runs/{run_id}/artifacts/samples/samples.png")
    browser.find_element(By.XPATH, "//*[normalize-space(.)='samples/samples.png']")  # the preview's title
    grid = (32 + 2) * 4 + 2  # a 4x4 grid (train.sample_grid 16) of 32-pixel samples, 2-pixel padding

    def grid_image_loaded(driver):  # the preview is an <img> (blob: URL) that the browser decoded
        return any(driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) == grid
                   for img in driver.find_elements(By.TAG_NAME, "img"))

    WebDriverWait(browser, 60).until(grid_image_loaded)

    # The run's architecture figure (written by the train stage beside the checkpoint and logged to the run).
    from PIL import Image

    width = Image.open(pipeline / "models/final/seed0/architecture/generator.png").width
    assert "architecture/generator.png" in {a.path for a in client.list_artifacts(run_id, "architecture")}
    # The artifact tree of this run's page (open at samples/): unfold architecture/ and pick the generator's figure.
    browser.find_element(By.XPATH, "//div[normalize-space(.)='architecture'][i]").click()
    browser.find_element(By.XPATH, "//div[normalize-space(.)='generator.png'][i]").click()
    browser.find_element(By.XPATH, "//*[normalize-space(.)='architecture/generator.png']")  # the preview's title

    def figure_loaded(driver):
        return any(driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) == width
                   for img in driver.find_elements(By.TAG_NAME, "img"))

    WebDriverWait(browser, 60).until(figure_loaded)
