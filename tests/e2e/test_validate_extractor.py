"""The validate_extractor stage's command line as dvc.yaml spells it, on a tiny prepared split (noise, 10 classes)
and a tiny trained classifier with the user's params shrunk: metrics/extractor.json and plots/extractor.png are
written whole and the summary line printed; without the classifier's checkpoint it is one `error:` line, exit 2,
and nothing written."""

import json
import os
import re
import shlex
import subprocess
import sys

import pytest
import yaml

from dcgan_lab.core.paths import classifier_checkpoint
from helpers import ROOT, error_line, held_out_prepared, raw_params_file, shrink, tiny_classifier, tree_sha256


def stage_command() -> list[str]:
    exec_, python, script, *args = shlex.split(yaml.safe_load((ROOT / "dvc.yaml").read_text())
                                               ["stages"]["validate_extractor"]["cmd"])
    assert (exec_, python) == ("exec", "python")
    return [sys.executable, str(ROOT / script), *args]


def run_stage(cwd):
    # This checkout's code first on the path; one thread, as helpers.env_for: 5 s instead of 15 on 2 busy cores.
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    return subprocess.run(stage_command(), cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def workdir(tmp_path):
    """data/prepared (train, val and test: 100 noise images each) and models/classifier as the pipeline lays them
    out, and params.yaml shrunk (evaluate.n_real 300: every image of the 100)."""
    data = held_out_prepared(tmp_path / "data", n=100)
    tiny_classifier(classifier_checkpoint(tmp_path / "models" / "classifier"), data)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(shrink(raw_params_file()), sort_keys=False))
    return tmp_path


def test_the_stage_writes_its_json_and_png_and_prints_one_summary_line(workdir):
    result = run_stage(workdir)
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert re.fullmatch(r"dcgan-lab-classifier: floor FID \S+ \(100 val vs 100 test images\); FID rises in \d of 7 "
                        r"disturbances.*; recall (falls|does not fall) .*; batch-size invariant \(max \|diff\| \S+\); "
                        r"sensitivity \S+ floor", line), line
    report = json.loads((workdir / "metrics/extractor.json").read_text())
    assert report["protocol"]["split"] == "val" and report["protocol"]["n"] == 100
    r = report["extractors"]["dcgan-lab-classifier"]
    assert len(r["disturbances"]) == 7 and r["n"] == 100 and r["checks"]["batch_size_invariance"]["ok"]
    warnings = [w for w in result.stderr.splitlines() if w.startswith("warning: ")]
    assert warnings == r["warnings"] and r["ok"] == (warnings == [])  # a failed check warns, the stage succeeds
    assert (workdir / "plots/extractor.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_missing_classifier_is_one_error_line_and_nothing_is_written(workdir):
    classifier_checkpoint(workdir / "models" / "classifier").unlink()
    before = tree_sha256(workdir)
    line = error_line(run_stage(workdir))
    assert line == ("error: models/classifier/classifier.pt: classifier checkpoint not found; run `dvc repro "
                    "train_classifier` first")
    assert tree_sha256(workdir) == before and not (workdir / "metrics").exists() and not (workdir / "plots").exists()
