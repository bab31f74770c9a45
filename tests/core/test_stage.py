"""The stage runner: params read and checked before the stage's work, and a user error is one line on
stderr and exit status 2 (DVC shows it as the stage's failure), never a traceback."""

import subprocess
import sys
import textwrap

import yaml

STAGE = textwrap.dedent("""
    import argparse, sys
    from dcgan_lab.core.errors import DataError
    from dcgan_lab.core.stage import run_stage

    def main(params, args):
        if args.fail == "user":
            raise DataError("data/prepared/train.pt: checksum mismatch; rerun `dvc repro prepare`")
        if args.fail == "bug":
            raise KeyError("a bug")
        print(f"batch {params.train.batch_size} variants {','.join(params.variants)}")

    parser = argparse.ArgumentParser()
    parser.add_argument("--fail", default="")
    run_stage(main, parser)
""")


def stage(tmp_path, *args):
    script = tmp_path / "stage.py"
    script.write_text(STAGE)
    return subprocess.run([sys.executable, str(script), *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)


def test_params_yaml_in_the_working_directory_is_read_by_default(tmp_path, raw_params):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({**raw_params, "train": {"batch_size": 8}}, sort_keys=False))
    result = stage(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"batch 8 variants {','.join(raw_params['variants'])}\n"


def test_a_user_error_exits_2_with_one_error_line(tmp_path, raw_params):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw_params))
    result = stage(tmp_path, "--fail", "user")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: data/prepared/train.pt: checksum mismatch; rerun `dvc repro prepare`"]


def test_a_bad_params_file_is_a_user_error_before_the_stage_runs(tmp_path, raw_params):
    (tmp_path / "other.yaml").write_text(yaml.safe_dump({**raw_params, "train": {"lr_g": "2e-4"}}))
    result = stage(tmp_path, "--params", "other.yaml")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: train.lr_g: expected a number, got '2e-4' (write floats like 2.0e-4: YAML reads 2e-4 as a string)"]
    result = stage(tmp_path)  # no params.yaml here
    assert (result.returncode, result.stderr.splitlines()) == (2, ["error: params.yaml: params file not found"])


def test_a_bug_is_not_hidden_behind_a_user_error_line(tmp_path, raw_params):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw_params))
    result = stage(tmp_path, "--fail", "bug")
    assert result.returncode == 1 and "Traceback" in result.stderr and "KeyError: 'a bug'" in result.stderr
    assert not any(line.startswith("error:") for line in result.stderr.splitlines())
