"""`dcgan-lab interpolate`, run as the installed console script: a PNG row and a looping GIF with one frame per
step, whose ends are the first samples of `sample --seed S1` and `sample --seed S2`."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from dcgan_lab.gan.checkpoint import load_generator
from dcgan_lab.gan.sampling import generate_from, latent_noise, latent_walk
from helpers import dcgan_lab_all, error_line


def test_a_row_and_a_gif_walk_from_one_seeds_noise_to_the_others(model_dir, tmp_path):
    row, gif, too_few, bad_out = dcgan_lab_all(
        ("interpolate", model_dir, "--from", 3, "--to", 4, "--steps", 5, "--slerp", "--out", tmp_path / "walk.png"),
        ("interpolate", model_dir, "--ema", "--from", 3, "--to", 4, "--steps", 6, "--out", tmp_path / "walk.gif"),
        ("interpolate", model_dir, "--from", 3, "--to", 4, "--steps", 1, "--out", tmp_path / "x.gif"),
        ("interpolate", model_dir, "--from", 3, "--to", 4, "--out", tmp_path / "x.mp4"))
    assert row.returncode == 0 and "5 frames of" in row.stdout and "seed 3 -> 4 (slerp)" in row.stdout
    frames = np.asarray(Image.open(tmp_path / "walk.png"))
    assert frames.shape == (34 + 2, 5 * 34 + 2)  # one row of 5 frames of 32 px, 2 px padding
    ends = torch.cat([latent_noise(1, 16, 3), latent_noise(1, 16, 4)])  # what `sample --seed 3` / `--seed 4` draw
    expected = generate_from(load_generator(model_dir / "checkpoint.pt"), latent_walk(*ends, 5, spherical=True))
    for i in range(5):
        assert np.array_equal(frames[2:34, 2 + 34 * i : 34 * (i + 1)], expected[i, 0].numpy()), i

    assert gif.returncode == 0 and "seed 3 -> 4 (linear)" in gif.stdout, gif.stderr
    with Image.open(tmp_path / "walk.gif") as animation:
        assert animation.n_frames == 6 and animation.info["loop"] == 0 and animation.size == (32, 32)

    assert "argument --steps: 1 is out of range; allowed: an integer >= 2" in error_line(too_few)
    assert "allowed: a .png file (one row of frames) or a .gif file" in error_line(bad_out)
