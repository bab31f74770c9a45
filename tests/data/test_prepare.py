"""The prepare stage: a data set -> uint8 splits at data.image_size plus their manifest, whole or not at all."""

import hashlib
import json
from pathlib import Path

import pytest
import torch

from dcgan_lab.core.config import DataConfig
from dcgan_lab.core.errors import DatasetNotFound
from dcgan_lab.data.prepare import prepare
from dcgan_lab.data.sources import fit_size
from dcgan_lab.data.splits import load_split
from helpers import fake_idx_dir, image_folder

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


def test_fashion_mnist_path(tmp_path):
    src = fake_idx_dir(tmp_path / "fashion")
    manifest = prepare(DataConfig(dataset="fashion-mnist", fashion_mnist_dir=str(src), image_size=16),
                       tmp_path / "out")
    assert manifest["splits"]["train"] == {**manifest["splits"]["train"], "n": 40, "shape": [1, 16, 16]}
    assert manifest["splits"]["test"]["n"] == 12 and len(manifest["classes"]) == 10


@pytest.mark.skipif(not FASHION.exists(), reason="Debian package dataset-fashion-mnist not installed")
def test_real_fashion_mnist_from_debian(tmp_path):
    manifest = prepare(DataConfig(dataset="fashion-mnist", train_limit=100), tmp_path / "out")
    assert manifest["splits"]["test"]["n"] == 10000 and manifest["splits"]["train"]["shape"] == [1, 32, 32]


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
