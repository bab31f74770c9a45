"""bench_train --profile (profile_step.py) times what the train stage runs, op by op and layer by layer."""

import re
import sys

import pytest
import torch

from helpers import ROOT

sys.path.insert(0, str(ROOT))  # benchmarks/ is not an installed package
from benchmarks import bench_train, profile_step  # noqa: E402


def test_profile_drives_fits_loop_rolls_its_ops_up_by_kind_and_times_each_conv_layer(params):
    # --profile times what the train stage runs (fit's Loop: EMA, read-backs), so the ops of the EMA update appear.
    images = torch.randint(0, 256, (256, 1, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    out = profile_step.profile(params, "final", images, torch.device("cpu"), steps=3, top=200)
    lines = out.splitlines()
    assert lines[0].startswith("torch.profiler: 3 steps of fit's loop, variant final") and "ms/step" in lines[0]
    profiled, bare = re.search(r"([\d.]+) ms/step under the profiler, ([\d.]+) without it", lines[0]).groups()
    assert float(profiled) > 0 and float(bare) > 0  # the same steps timed without it, beside
    assert "aten::convolution_backward" in out and "aten::lerp_" in out  # the EMA's update
    kinds = next(line for line in lines if line.startswith("self CPU time by kind: "))
    shares = dict(part.rsplit(" ", 1) for part in kinds.removeprefix("self CPU time by kind: ").split(", "))
    assert set(shares) == set(profile_step.KINDS) | {"other"}
    assert sum(float(v.rstrip("%")) for v in shares.values()) == pytest.approx(100, abs=len(shares))
    assert float(shares["conv backward"].rstrip("%")) > 0

    # A row per convolution layer of G and D (8), each timed and counted, D's first conv apart from G's last
    # although their weights have one shape; together they do the step's model FLOPs, as the MFU rows count them.
    assert lines[lines.index(kinds) + 1].startswith("Adam's steps in all (Optimizer.step")
    layers = [line.split() for line in lines[lines.index(kinds) + 4:]]
    assert [row[0] for row in layers] == [f"{net}.net.{i}" for net, idx in (("Generator", (0, 3, 6, 9)),
                                          ("Discriminator", (0, 2, 5, 8))) for i in idx] + ["all"]
    assert all(float(row[-4]) > 0 for row in layers)  # ms/step: its ops found by its (input, weight) shapes
    step_flops = bench_train.flops_per_image(params, "final", torch.device("cpu"))["train_step_flops_per_image"]
    assert float(layers[-1][-3]) == pytest.approx(step_flops * params.train.batch_size / 1e6, rel=1e-3)
    assert all(float(row[-3]) > 0 for row in layers)
