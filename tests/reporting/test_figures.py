"""The report's figures are written as PNG files of a sensible size, whatever the number of runs."""

from pathlib import Path

import pandas as pd
from PIL import Image

from dcgan_lab.evaluation.results import results_table
from dcgan_lab.reporting.figures import plot_losses, plot_metric, side_by_side
from dcgan_lab.reporting.stats import noise_floor

PNG = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    assert path.read_bytes()[:8] == PNG, f"{path} is not a PNG"
    with Image.open(path) as img:
        return img.size


def test_metric_figure_with_one_and_several_seeds(tmp_path):
    results = {"baseline": {"seed0": {"fid": 8.0}, "seed1": {"fid": 8.6}},
               "final": {"seed0": {"fid": 4.8}, "seed1": {"fid": 5.1}}}
    table = results_table(results)
    plot_metric(noise_floor(table, ["fid"]), table, "fid", tmp_path / "fid.png")
    width, height = png_size(tmp_path / "fid.png")
    assert width > height > 100
    one = results_table({"final": {"seed0": {"fid": 4.8}}})  # no interval with one seed
    plot_metric(noise_floor(one, ["fid"]), one, "fid", tmp_path / "one.png")
    assert png_size(tmp_path / "one.png")[1] > 100


def test_loss_figure_and_sample_grids_side_by_side(tmp_path):
    steps = list(range(1, 41))
    losses = {f"final-seed{s}": pd.DataFrame({"step": steps, "loss_d": [1.0 + s] * 40, "loss_g": [2.0] * 40})
              for s in (0, 1)}
    plot_losses(losses, tmp_path / "losses.png")
    assert png_size(tmp_path / "losses.png")[0] > 500
    grids = {}
    for variant in ("baseline", "final"):
        for seed in (0, 1):
            path = tmp_path / f"{variant}{seed}.png"
            Image.new("RGB", (34, 34), (seed * 200, 0, 0)).save(path)
            grids[(variant, seed)] = path
    side_by_side(grids, tmp_path / "samples.png")
    width, height = png_size(tmp_path / "samples.png")
    assert width > 300 and height > 300  # two rows (variants) of two columns (seeds)
