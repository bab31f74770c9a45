"""The ablation grid's pure parts: axes, points, queue arguments, the cross-experiment table."""

import math

import pytest

from dcgan_lab.core.errors import ConfigError
from dcgan_lab.reporting.experiments import collect, grid_points, parse_axes, queue_args, render


def test_axes_make_the_cartesian_grid_of_queue_commands():
    axes = parse_axes(["data.pixel_range=[-1,1]|[0,1]", "train.loss=bce|hinge"])
    assert axes == {"data.pixel_range": ["[-1,1]", "[0,1]"], "train.loss": ["bce", "hinge"]}
    points = grid_points(axes)
    assert points == [{"data.pixel_range": "[-1,1]", "train.loss": "bce"},
                      {"data.pixel_range": "[-1,1]", "train.loss": "hinge"},
                      {"data.pixel_range": "[0,1]", "train.loss": "bce"},
                      {"data.pixel_range": "[0,1]", "train.loss": "hinge"}]
    assert queue_args(points[3], {"ablation.seeds": "[0,1,2]"}) == [
        "dvc", "exp", "run", "--queue", "-S", "ablation.seeds=[0,1,2]", "-S", "data.pixel_range=[0,1]",
        "-S", "train.loss=hinge"]
    with pytest.raises(ConfigError, match=r"^--grid 'train.loss': expected key=value1\|value2"):
        parse_axes(["train.loss"])


def test_the_report_has_one_line_per_experiment_and_variant_best_fid_first():
    rows = [
        {"Experiment": None, "rev": "workspace", "data.pixel_range": [-1, 1], "final.fid_mean": 9.0,
         "final.n_seeds": 1},
        {"Experiment": "wise-yak", "rev": "abc1234", "data.pixel_range": [0, 1], "final.fid_mean": 4.0,
         "final.fid_ci95": 0.5, "final.n_seeds": 3, "final.is_mean": 5.0, "baseline.fid_mean": 7.0,
         "baseline.n_seeds": 3},
        {"Experiment": "queued-one", "rev": "def5678", "data.pixel_range": [-1, 1]},  # no results yet
    ]
    table = collect(rows, ["data.pixel_range"])
    assert list(zip(table["experiment"], table["variant"])) == [
        ("workspace", "final"), ("wise-yak", "baseline"), ("wise-yak", "final")]
    assert math.isnan(table["fid_ci95"].iloc[0]) or table["fid_ci95"].iloc[0] is None
    md = render(table, ["data.pixel_range"]).splitlines()
    assert md[2] == "| experiment | data.pixel_range | variant | seeds | FID ↓ | IS ↑ | KID ↓ | precision ↑ | recall ↑ |"
    assert md[4] == "| wise-yak | [0, 1] | final | 3 | 4.000 ± 0.500 | 5.000 | - | - | - |"
    assert md[5].startswith("| wise-yak | [0, 1] | baseline | 3 | 7.000 |")
    assert md[6].startswith("| workspace | [-1, 1] | final | 1 | 9.000 |")


def test_no_finished_experiment_says_so():
    assert collect([{"Experiment": "queued-one", "rev": "def5678"}], ["train.loss"]).empty
    assert render(collect([], ["train.loss"]), ["train.loss"]) == "No finished experiments with metrics/ablation.json.\n"
