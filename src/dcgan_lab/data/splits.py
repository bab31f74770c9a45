"""The prepared splits as the later stages read them, checked against the manifest `prepare` wrote."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from ..core import paths
from ..core.errors import DataError, DatasetNotFound, reason
from ..core.files import load_torch

Split = tuple[torch.Tensor, torch.Tensor]  # images (N, C, H, W) uint8, labels (N,) int64


def tensor_sha256(x: torch.Tensor, chunk: int = 64 << 20) -> str:
    """sha256 of the tensor's bytes in C order, fed in chunks: no copy of a (memory-mapped) data set."""
    h = hashlib.sha256()
    for part in x.contiguous().view(-1).view(torch.uint8).split(chunk):
        h.update(part.numpy())
    return h.hexdigest()


def read_manifest(data_dir: Path) -> dict:
    """{dataset, image_size, classes, splits: {name: {n, shape, dtype, sha256}}} as `prepare` wrote it."""
    path = paths.manifest_file(data_dir)
    try:
        manifest = json.loads(path.read_text())
        manifest["splits"], manifest["classes"]  # noqa: B018  (the keys every reader needs)
    except FileNotFoundError:
        raise DatasetNotFound(f"{path}: prepared data not found; run `dvc repro prepare` first") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: unreadable ({type(exc).__name__}: {exc}); rerun `dvc repro prepare`") from exc
    return manifest


def split_sha256(data_dir: Path, split: str) -> str:
    """The sha256 that the prepare stage recorded for a split's images."""
    splits = read_manifest(data_dir)["splits"]
    if split not in splits or "sha256" not in splits[split]:
        raise DataError(f"{paths.manifest_file(data_dir)}: has no split {split!r}; rerun `dvc repro prepare`")
    return splits[split]["sha256"]


def load_split(data_dir: Path, split: str, mmap: bool = False) -> Split:
    """A prepared split, checked against the sha256 in the manifest: a corrupt file is an error, not data.
    With `mmap`, the images stay in the file (memory-mapped, read on demand) instead of in memory."""
    path = paths.split_file(data_dir, split)
    if not path.exists():
        raise DatasetNotFound(f"{path}: prepared split not found; run `dvc repro prepare` first")
    expected = split_sha256(data_dir, split)
    fix = f"rerun `dvc repro prepare` or `dvc checkout {data_dir}`"
    blob = load_torch(path, DataError, "prepared split", fix, mmap=mmap)
    try:
        images, labels = blob["images"], blob["labels"]
        found = tensor_sha256(images)
    except Exception as exc:  # a readable file that is not a split
        raise DataError(f"{path}: not a prepared split ({reason(exc)}); {fix}") from exc
    if found != expected:
        raise DataError(f"{path}: checksum mismatch (manifest {expected[:12]}..., file {found[:12]}...); {fix}")
    return images, labels


def selection_split(data_dir: Path) -> str:
    """The held-out split that picks the best checkpoint during training: val, or test where a data set
    has no val split. `evaluate` scores on `evaluate.real_split` (test by default), unseen by selection."""
    return "val" if "val" in read_manifest(data_dir)["splits"] else "test"
