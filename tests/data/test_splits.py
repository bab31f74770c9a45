"""The prepared splits as later stages read them: checked against the manifest, memory-mapped on request."""

import hashlib
import json
from pathlib import Path

import pytest
import torch

from dcgan_lab.core.config import DataConfig
from dcgan_lab.core.errors import DataError, DatasetNotFound
from dcgan_lab.data.prepare import prepare
from dcgan_lab.data.splits import load_split, read_manifest, selection_split, split_sha256, tensor_sha256
from helpers import image_folder, prepared


def test_tensor_sha256_in_chunks_is_the_digest_of_all_bytes():
    x = torch.randint(0, 256, (5, 3, 7, 7), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    whole = hashlib.sha256(x.numpy().tobytes()).hexdigest()
    assert all(tensor_sha256(x, chunk) == whole for chunk in (1, 100, x.numel(), 1 << 20))


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


def test_corrupt_prepared_data_is_a_checksum_error(tmp_path):
    data = prepared(tmp_path)
    blob = torch.load(data / "train.pt", weights_only=True)
    blob["images"][0, 0, 0, 0] ^= 1  # one flipped bit
    torch.save(blob, data / "train.pt")
    with pytest.raises(DataError, match=r"train\.pt: checksum mismatch \(manifest [0-9a-f]{12}\.\.\., file "):
        load_split(data, "train")
    (data / "train.pt").write_bytes(b"\0" * 100)
    with pytest.raises(DataError, match=r"train\.pt: not a readable prepared split"):
        load_split(data, "train")


def test_missing_or_unreadable_manifest_and_unknown_split_say_to_rerun_prepare(tmp_path):
    with pytest.raises(DatasetNotFound, match=r"manifest\.json: prepared data not found; run `dvc repro prepare`"):
        read_manifest(tmp_path)
    data = prepared(tmp_path)
    assert split_sha256(data, "train") == tensor_sha256(load_split(data, "train")[0])
    with pytest.raises(DataError, match=r"manifest\.json: has no split 'val'; rerun `dvc repro prepare`"):
        split_sha256(data, "val")
    with pytest.raises(DatasetNotFound, match=r"test\.pt: prepared split not found"):
        load_split(data, "test")
    (data / "manifest.json").write_text(json.dumps({"splits": {}}))  # no classes: not what prepare writes
    with pytest.raises(DataError, match=r"manifest\.json: unreadable \(KeyError"):
        read_manifest(data)


def test_model_selection_uses_val_where_there_is_one_else_test(tmp_path):
    data = prepared(tmp_path)
    manifest = json.loads((data / "manifest.json").read_text())
    manifest["splits"]["test"] = manifest["splits"]["train"]
    (data / "manifest.json").write_text(json.dumps(manifest))
    assert selection_split(data) == "test"
    manifest["splits"]["val"] = manifest["splits"]["train"]
    (data / "manifest.json").write_text(json.dumps(manifest))
    assert selection_split(data) == "val"
