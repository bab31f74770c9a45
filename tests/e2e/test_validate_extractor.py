"""The validate_extractor stage's command line as dvc.yaml spells it, on a tiny prepared split (noise, 10 classes)
and a tiny trained classifier with the user's params shrunk: metrics/extractor.json and plots/extractor.png are
written whole for both feature spaces and a summary line printed for each; without the classifier's checkpoint, or
with the second one missing or corrupt, it is one `error:` line, exit 2, and nothing written."""

import json
import os
import re
import shlex
import subprocess
import sys

import pytest
import yaml

from dcgan_lab.core.paths import classifier_checkpoint
from helpers import (ROOT, error_line, held_out_prepared, raw_params_file, shrink, tiny_classifier,
                     tiny_second_classifier, tree_sha256)


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
    """data/prepared (train, val and test: 100 noise images each), models/classifier and models/second_classifier
    as the pipeline lays them out, and params.yaml shrunk (evaluate.n_real 300: every image of the 100)."""
    data = held_out_prepared(tmp_path / "data", n=100)
    tiny_classifier(classifier_checkpoint(tmp_path / "models" / "classifier"), data)
    tiny_second_classifier(classifier_checkpoint(tmp_path / "models" / "second_classifier"), data)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(shrink(raw_params_file()), sort_keys=False))
    return tmp_path


def test_the_stage_validates_both_spaces_writes_its_json_and_png_and_prints_a_summary_line_each(workdir):
    result = run_stage(workdir)
    assert result.returncode == 0, result.stderr
    line, second = result.stdout.splitlines()
    assert second.startswith("dcgan-lab-lenet: floor FID ")
    assert re.fullmatch(r"dcgan-lab-classifier: floor FID \S+ \(100 val vs 100 test images\); FID rises in \d of 7 "
                        r"disturbances.*; recall (falls|does not fall) .*; batch-size invariant \(max \|diff\| \S+\); "
                        r"sensitivity \S+ floor", line), line
    report = json.loads((workdir / "metrics/extractor.json").read_text())
    assert report["protocol"]["split"] == "val" and report["protocol"]["n"] == 100
    assert list(report["extractors"]) == ["dcgan-lab-classifier", "dcgan-lab-lenet"]  # the evaluation's first
    for r in report["extractors"].values():
        assert len(r["disturbances"]) == 7 and r["n"] == 100 and r["checks"]["batch_size_invariance"]["ok"]
    warnings = [w for w in result.stderr.splitlines() if w.startswith("warning: ")]
    expected = [w for r in report["extractors"].values() for w in r["warnings"]]
    assert warnings == expected  # a failed check warns, the stage succeeds
    assert (workdir / "plots/extractor.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_missing_classifier_is_one_error_line_and_nothing_is_written(workdir):
    classifier_checkpoint(workdir / "models" / "classifier").unlink()
    before = tree_sha256(workdir)
    line = error_line(run_stage(workdir))
    assert line == ("error: models/classifier/classifier.pt: classifier checkpoint not found; run `dvc repro "
                    "train_classifier` first")
    assert tree_sha256(workdir) == before and not (workdir / "metrics").exists() and not (workdir / "plots").exists()


@pytest.mark.parametrize("breaks", ["missing", "corrupt"])
def test_a_missing_or_corrupt_second_classifier_is_one_error_line_and_nothing_is_written(workdir, breaks):
    path = classifier_checkpoint(workdir / "models" / "second_classifier")
    path.unlink() if breaks == "missing" else path.write_bytes(b"garbage")
    before = tree_sha256(workdir)
    line = error_line(run_stage(workdir))
    if breaks == "missing":
        assert line == ("error: models/second_classifier/classifier.pt: second classifier checkpoint not found; run "
                        "`dvc repro train_second_classifier` first, or set evaluate.second_extractor: false")
    else:
        assert re.fullmatch(r"error: models/second_classifier/classifier\.pt: .+; rerun `dvc repro "
                            r"train_second_classifier`", line), line
    assert tree_sha256(workdir) == before and not (workdir / "metrics").exists()
