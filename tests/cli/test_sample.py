"""`dcgan-lab sample`, run as the installed console script on a model directory trained for a few steps: a grid
PNG, a folder of PNGs and an .npz, byte-identical for the same seed, truncation that bounds the noise, class K
or every class in turn from a conditional checkpoint, and one `error:` line for each way SRC or a flag can be
wrong."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from dcgan_lab.cli.sample import rows_per_class
from dcgan_lab.gan.checkpoint import load_generator, save_gan
from dcgan_lab.gan.models import Discriminator, DiscriminatorSpec, Generator, GeneratorSpec
from dcgan_lab.gan.sampling import generate_from, latent_noise
from helpers import dcgan_lab_all, error_line


def ok(result) -> str:
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return result.stdout


def test_a_grid_and_a_folder_hold_the_samples_of_the_chosen_generator(model_dir, tmp_path):
    grid_run, folder_run = dcgan_lab_all(
        ("sample", model_dir, "--best", "--n", 10, "--seed", 3, "--out", tmp_path / "grid.png"),
        ("sample", model_dir, "--ema", "--n", 5, "--out", f"{tmp_path / 'pngs'}/"))
    assert f"10 samples of {model_dir / 'best.pt'}, seed 3, a 4x3 grid" in ok(grid_run)
    grid = Image.open(tmp_path / "grid.png")
    assert grid.size == (4 * 34 + 2, 3 * 34 + 2) and grid.mode == "L"  # 32 px samples, 2 px padding, grayscale
    best = generate_from(load_generator(model_dir / "best.pt"), latent_noise(10, 16, seed=3))
    assert np.array_equal(np.asarray(grid)[2:34, 2:34], best[0, 0].numpy())  # the first sample, top left

    assert f"wrote 5 PNGs to {tmp_path / 'pngs'}/" in ok(folder_run)
    files = sorted((tmp_path / "pngs").iterdir())
    assert [f.name for f in files] == [f"sample_{i:04d}.png" for i in range(5)]
    ema = generate_from(load_generator(model_dir / "checkpoint.pt", ema=True), latent_noise(5, 16, seed=0))
    assert all(np.array_equal(np.asarray(Image.open(f)), ema[i, 0].numpy()) for i, f in enumerate(files))


def test_npz_same_seed_same_bytes_another_seed_other_samples_and_truncation_bounds_the_noise(model_dir, tmp_path):
    runs = dcgan_lab_all(*[("sample", model_dir, "--n", 7, "--seed", seed, "--out", tmp_path / f"{name}.npz")
                           for name, seed in (("a", 0), ("b", 0), ("c", 1))],
                         ("sample", model_dir, "--n", 7, "--truncation", 0.5, "--out", tmp_path / "t.npz"))
    assert all(ok(r) for r in runs)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with np.load(tmp_path / "a.npz") as a, np.load(tmp_path / "c.npz") as c, np.load(tmp_path / "t.npz") as t:
        assert sorted(a.files) == ["images", "z"]
        assert a["images"].dtype == np.uint8 and a["images"].shape == (7, 1, 32, 32)
        assert a["z"].dtype == np.float32 and a["z"].shape == (7, 16)
        raw = generate_from(load_generator(model_dir / "checkpoint.pt"), torch.from_numpy(a["z"]))
        assert np.array_equal(a["images"], raw.numpy())  # the raw G of checkpoint.pt, on the z it wrote
        assert not np.array_equal(a["images"], c["images"]) and not np.array_equal(a["z"], c["z"])
        assert np.abs(a["z"]).max() > 1.5  # untruncated noise goes well past the bound below
        assert np.abs(t["z"]).max() <= 0.5 and t["z"].std() > 0.2  # truncated: bounded, and still spread out


def test_every_failure_is_one_error_line_naming_what_is_wrong(model_dir, tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")  # a torch file, but not a GAN checkpoint
    missing, foreign, klass, zero, negative, suffix = dcgan_lab_all(
        ("sample", tmp_path / "nope", "--out", tmp_path / "x.png"),
        ("sample", tmp_path / "foreign.pt", "--out", tmp_path / "x.png"),
        ("sample", model_dir, "--class", 3, "--out", tmp_path / "x.png"),
        ("sample", model_dir, "--truncation", 0, "--out", tmp_path / "x.png"),
        ("sample", model_dir, "--truncation", -1, "--out", tmp_path / "x.png"),
        ("sample", model_dir, "--out", tmp_path / "x.jpg"))
    assert error_line(missing).startswith(f"error: {tmp_path / 'nope'}: no such file or directory; SRC is a "
                                          f"checkpoint (models/<variant>/seed<k>/checkpoint.pt or best.pt), a model")
    assert error_line(foreign).startswith(f"error: {tmp_path / 'foreign.pt'}: not a dcgan-lab GAN checkpoint")
    assert error_line(klass).startswith(f"error: --class: {model_dir} is not a conditional model")
    for result, bad in ((zero, "0"), (negative, "-1")):
        assert f"argument --truncation: {bad} is out of range; allowed: a number > 0" in error_line(result)
    assert "--out: " in error_line(suffix) and "allowed: a .png file (one grid), a folder" in error_line(suffix)
    assert not list(tmp_path.glob("x*")), "nothing is written when it fails"


@pytest.fixture(scope="module")
def conditional(tmp_path_factory):
    """checkpoint.pt of a conditional GAN (10 classes) at tiny widths, as the train stage saves one."""
    path = tmp_path_factory.mktemp("conditional") / "checkpoint.pt"
    torch.manual_seed(0)
    g = Generator(GeneratorSpec(16, 8, 32, 1, "relu", True, "tanh", n_classes=10))
    save_gan(path, g, Discriminator(DiscriminatorSpec(8, 32, 1, True, True, "conv", n_classes=10)), steps=1)
    return path


def test_class_k_of_a_conditional_generator_and_every_class_in_turn(conditional, tmp_path):
    threes, again, pngs, grid, every = dcgan_lab_all(
        ("sample", conditional, "--class", 3, "--n", 6, "--seed", 4, "--out", tmp_path / "a.npz"),
        ("sample", conditional, "--class", 3, "--n", 6, "--seed", 4, "--out", tmp_path / "b.npz"),
        ("sample", conditional, "--class", 3, "--n", 5, "--out", f"{tmp_path / 'pngs'}/"),
        ("sample", conditional, "--n", 25, "--out", tmp_path / "grid.png"),
        ("sample", conditional, "--n", 12, "--out", tmp_path / "every.npz"))
    assert f"6 samples of {conditional}, seed 4, class 3;" in ok(threes) and ok(again)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    g = load_generator(conditional)
    with np.load(tmp_path / "a.npz") as a, np.load(tmp_path / "every.npz") as every_npz:
        assert a["images"].shape == (6, 1, 32, 32) and a["labels"].tolist() == [3] * 6
        expected = generate_from(g, latent_noise(6, 16, 4), torch.full((6,), 3))
        assert np.array_equal(a["images"], expected.numpy())
        assert every_npz["labels"].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert "wrote 5 PNGs" in ok(pngs) and len(list((tmp_path / "pngs").iterdir())) == 5
    assert "25 samples of" in ok(grid) and "classes 0-9 in turn, a 3x10 grid, one row per class" in grid.stdout
    png = np.asarray(Image.open(tmp_path / "grid.png"))
    assert png.shape == (10 * 34 + 2, 3 * 34 + 2)  # 10 rows (classes) of 3 columns
    samples = generate_from(g, latent_noise(25, 16, 0), torch.arange(25) % 10)
    assert np.array_equal(png[2 + 34:34 + 34, 2 + 34:34 + 34], samples[11, 0].numpy())  # row 1, column 1: sample 11
    assert (png[2 + 5 * 34:34 + 5 * 34, 2 + 2 * 34:34 + 2 * 34] == 255).all()  # row 5 holds 2 samples: a white cell


def test_a_class_out_of_range_names_the_allowed_range(conditional, tmp_path):
    (result,) = dcgan_lab_all(("sample", conditional, "--class", 10, "--out", tmp_path / "x.png"))
    assert error_line(result) == f"error: --class: 10 is out of range for {conditional}; allowed: 0 <= K < 10"
    assert not list(tmp_path.glob("x*"))


def test_rows_per_class_puts_sample_i_in_row_i_mod_classes():
    images = torch.arange(7, dtype=torch.uint8).view(7, 1, 1, 1)
    tiles, columns = rows_per_class(images, 3)
    assert columns == 3 and tiles.view(3, 3).tolist() == [[0, 3, 6], [1, 4, 255], [2, 5, 255]]
