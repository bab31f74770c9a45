"""`make gpu-check`'s script on a CPU (--device cpu, the shrunk params): every path a row of the table and of the
markdown file, a failing path a row saying why, MFU from the peak, and without CUDA one line, exit 0 and no file.
No timing is asserted (see benchmarks/)."""

import argparse
import os
import subprocess
import sys

import pytest
import torch
import yaml

from helpers import ROOT, prepared, random_images, raw_params_file, shrink

sys.path.insert(0, str(ROOT))  # benchmarks/ is not an installed package
from benchmarks import bench_train, gpu_check  # noqa: E402
from benchmarks.common import Row  # noqa: E402
from dcgan_lab.core.params import load_params  # noqa: E402


@pytest.fixture
def params_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(shrink(raw_params_file()), sort_keys=False))
    return path


@pytest.fixture
def torch_threads():
    """--threads sets torch's thread count for the whole process: back to what it was after the test."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def markdown_rows(text: str) -> dict[str, dict[str, str]]:
    """The table of RESULTS-cuda.md as {path: {column: cell}}."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    header, body = cells[0], cells[2:]  # cells[1] is the |:---| line
    return {row[0]: dict(zip(header, row)) for row in body}


def number(cell: str) -> float:
    return float(cell.split()[0].rstrip("%").replace(",", ""))


def test_every_path_is_a_row_and_a_failing_one_says_why(params_file, tmp_path, monkeypatch, capsys, torch_threads):
    def no_compiler(*args, **kwargs):  # a compile error, told on two lines
        raise RuntimeError("inductor: no C++ compiler\nfound on PATH")

    monkeypatch.setattr(torch, "compile", no_compiler)
    out = tmp_path / "RESULTS-cuda.md"
    monkeypatch.setattr(sys, "argv", [
        "gpu_check.py", "--device", "cpu", "--quick", "--threads", "1", "--params", str(params_file),
        "--data", str(tmp_path / "no-data"), "--stand-in", "--research-width", "8", "--peak-tflops", "0.05",
        "--out", str(out)])
    assert gpu_check.main() == 0
    printed, text = capsys.readouterr().out, out.read_text()
    rows = markdown_rows(text)
    assert "on **cpu (no GPU: --device cpu)**" in text and "Peak for MFU: --peak-tflops 0.05 TFLOP/s." in text
    assert "512 noise images (no data at" in text  # (5 warm-up + 10 timed + 1) steps of 32

    stage = "train stage, 64x64, width 8"
    evals = ["eval final (s)", "eval final, warm real cache (s)", "eval final, vs ready-made samples (s)"]
    assert list(rows)[: len(gpu_check.PATHS)] == [p.name for p in gpu_check.PATHS]
    assert {stage, *evals} <= set(rows)
    assert all(name in printed for name in rows)  # the printed table has the same rows
    assert rows["torch.compile"]["note"] == "failed: RuntimeError: inductor: no C++ compiler found on PATH"
    assert rows["torch.compile"]["ours"] == "-" and rows["torch.compile"]["MFU"] == ""
    # the package's fp16 + GradScaler path is CUDA's: on a CPU speed.precision picks bf16, and the row says so
    assert rows["fp16 + GradScaler"]["note"].startswith("failed: Unsupported: fp16 + GradScaler is the package's path")
    assert "Adam fused: False" in rows["fused Adam (fp32 eager base)"]["note"]

    flops = bench_train.flops_per_image(load_params(params_file), "final", torch.device("cpu"))
    for name in ["fused Adam (fp32 eager base)", "bf16 autocast", "channels_last", "streamed, pinned memory",
                 "params.yaml as is"]:
        row = rows[name]
        assert number(row["ours"]) > 0 and number(row["classic loop / direct"]) > 0 and row["ratio"].endswith("x")
        expected = 100 * flops["train_step_flops_per_image"] * number(row["ours"]) / 0.05e12
        assert number(row["MFU"]) == pytest.approx(expected, abs=0.06), name
    assert rows["bf16 autocast"]["precision"] == "bf16" and rows["channels_last"]["precision"] == "fp32"
    assert number(rows[stage]["ours"]) > 0 and number(rows[stage]["MFU"]) > 0 and "4 steps of 32" in rows[stage]["note"]
    assert all(number(rows[name]["ours"]) > 0 and number(rows[name]["classic loop / direct"]) > 0 for name in evals)
    assert "same FID as torch-fidelity handed our samples ready-made: True" in rows["eval final (s)"]["note"]


def test_the_train_paths_read_the_prepared_split_where_there_is_one(params_file, tmp_path):
    parser = argparse.ArgumentParser()
    gpu_check.add_arguments(parser, quick=True)
    args = parser.parse_args(["--data", str(prepared(tmp_path))])
    params, cpu = load_params(params_file), torch.device("cpu")
    bench = gpu_check.train_bench(params, cpu, args, tmp_path / "mnist", peaks=None)
    assert torch.equal(bench.images, random_images(256)) and bench.data.startswith("the prepared train split")
    assert (bench.warm, bench.timed, bench.workers) == (5, 10, 0) and bench.fused is False  # fused on CUDA only
    assert bench.flops == bench_train.flops_per_image(params, "final", cpu)["train_step_flops_per_image"]
    assert len(bench.loader.dataset) == 256  # the reference reads the same images


def test_nothing_ran_exits_1_and_still_writes_the_file(params_file, tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_check, "check", lambda *args: ([Row("bf16 autocast", "img/s", None, note="failed: x")],
                                                           "set-up failed"))
    out = tmp_path / "RESULTS-cuda.md"
    monkeypatch.setattr(sys, "argv", ["gpu_check.py", "--device", "cpu", "--params", str(params_file),
                                      "--out", str(out)])
    assert gpu_check.main() == 1
    assert markdown_rows(out.read_text())["bf16 autocast"]["note"] == "failed: x"


@pytest.mark.parametrize("name, key", [
    ("NVIDIA H100 80GB HBM3", "H100"), ("NVIDIA H100 PCIe", "H100 PCIe"), ("NVIDIA H200", "H200"),
    ("NVIDIA A100-SXM4-80GB", "A100"), ("NVIDIA L4", "L4"), ("Tesla T4", "T4"),
    ("NVIDIA GeForce RTX 4090", "RTX 4090"), ("NVIDIA L40S", None), ("NVIDIA A10G", None)])
def test_the_peak_is_the_datasheet_s_of_that_gpu_or_unknown(monkeypatch, name, key):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    gpu, peaks, about = gpu_check.peaks_for(torch.device("cuda"), None)
    assert gpu == name
    if key is None:  # not L4's or A10's figures by a prefix of the name: unknown, and MFU blank
        assert peaks is None and about.startswith("unknown")
        assert gpu_check.mfu(1e6, 1e3, peaks, "bf16") is None
    else:
        assert about.startswith(f"{key} datasheet") and peaks["fp32"] > 0
        assert gpu_check.mfu(1e6, 1e3, peaks, "fp32") == pytest.approx(100 * 1e9 / (peaks["fp32"] * 1e12))


def test_without_cuda_one_line_exit_0_and_nothing_written(params_file, tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT / "src")}
    env.pop("BENCH_DEVICE", None)
    out, default = tmp_path / "RESULTS-cuda.md", ROOT / "benchmarks" / "RESULTS-cuda.md"
    before = default.stat().st_mtime_ns if default.exists() else None
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--params", str(params_file),
                             "--out", str(out)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stdout) == (0, gpu_check.NO_CUDA + "\n"), result.stderr
    assert not out.exists() and (default.stat().st_mtime_ns if default.exists() else None) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]
