"""Output files: which kind --out asks for, files that appear whole, the same bytes for the same tensors, and
an .npz that numpy reads as np.savez's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from dcgan_lab.cli import outputs
from dcgan_lab.core.errors import OutputError, UserError


def test_what_out_asks_for(tmp_path):
    assert [outputs.sample_kind(o) for o in ("g.png", "G.PNG", "s.npz", "dir/", str(tmp_path))] == [
        "grid", "grid", "npz", "folder", "folder"]
    assert [outputs.walk_kind(o) for o in ("w.png", "w.gif")] == ["row", "gif"]
    with pytest.raises(UserError, match=r"^--out: 'x\.jpg' is not an output sample writes"):
        outputs.sample_kind("x.jpg")
    with pytest.raises(UserError, match=r"^--out: 'w\.npz' is not an output interpolate writes"):
        outputs.walk_kind("w.npz")


def test_files_are_whole_and_the_same_tensors_give_the_same_bytes(tmp_path):
    images = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    z = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    for name in ("a", "b"):
        outputs.save_npz(tmp_path / f"{name}.npz", images=images.numpy(), z=z.numpy())
        assert outputs.save_grid(images, tmp_path / f"{name}.png") == (3, 2)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    with np.load(tmp_path / "a.npz") as npz:
        assert np.array_equal(npz["images"], images.numpy()) and np.array_equal(npz["z"], z.numpy())
    with Image.open(tmp_path / "a.png") as grid:
        assert grid.mode == "RGB" and grid.size == (3 * 10 + 2, 2 * 10 + 2)
        assert np.array_equal(np.asarray(grid)[2:10, 2:10], images[0].permute(1, 2, 0).numpy())
    files = outputs.save_folder(images, tmp_path / "new" / "dir")
    assert [f.name for f in files] == [f"sample_{i:04d}.png" for i in range(5)]
    outputs.save_gif(images, tmp_path / "w.gif")
    with Image.open(tmp_path / "w.gif") as gif:
        assert gif.n_frames == 5 and gif.info["loop"] == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp files left


def test_a_failed_write_leaves_nothing(tmp_path):
    (tmp_path / "file").write_text("a file where a folder should be")
    with pytest.raises(OutputError, match=r"file/g\.png: cannot write here \(.*\); check the path"):
        outputs.save_grid(torch.zeros(1, 1, 4, 4, dtype=torch.uint8), tmp_path / "file" / "g.png")
    with pytest.raises(ZeroDivisionError):
        with outputs.atomic_path(tmp_path / "x.npz") as tmp:
            tmp.write_bytes(b"half")
            1 / 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
