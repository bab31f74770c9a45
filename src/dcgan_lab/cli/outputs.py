"""Where samples go: a grid PNG, a folder of PNGs, an .npz of arrays, or an animated GIF.

Each file appears whole or not at all (written beside its name, then renamed over it), and the same
tensors give the same bytes: nothing stamps a time into them.
"""

from __future__ import annotations

import math
import os
import zipfile
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Iterator

from ..core.errors import OutputError, UserError

GIF_FRAME_MS = 100
NPZ_TIME = (1980, 1, 1, 0, 0, 0)  # zip's earliest date: np.savez would stamp the current time instead


def sample_kind(out: str) -> str:
    """What `sample --out` asks for: "grid" (.png), "folder" (ends in / or is a directory) or "npz"."""
    if out.endswith(("/", os.sep)) or Path(out).is_dir():
        return "folder"
    if Path(out).suffix.lower() in (".png", ".npz"):
        return {".png": "grid", ".npz": "npz"}[Path(out).suffix.lower()]
    raise UserError(f"--out: {out!r} is not an output sample writes; allowed: a .png file (one grid), a folder "
                    f"(ending in / or existing: one PNG per sample) or a .npz file (uint8 images and their z)")


def walk_kind(out: str) -> str:
    """What `interpolate --out` asks for: "row" (.png, one row of frames) or "gif" (an animation)."""
    suffix = Path(out).suffix.lower()
    if suffix not in (".png", ".gif"):
        raise UserError(f"--out: {out!r} is not an output interpolate writes; allowed: a .png file (one row of "
                        f"frames) or a .gif file (an animation that loops)")
    return {".png": "row", ".gif": "gif"}[suffix]


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temp name beside `path` (same suffix, so writers can tell the format), renamed over it on success."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write here ({exc.strerror or type(exc).__name__}); check the path "
                          f"and its permissions") from exc
    finally:
        with suppress(OSError):  # renamed, never written, or its folder could not be made
            tmp.unlink()


def to_pil(image):
    """uint8 (C, H, W), C = 1 or 3 -> a grayscale or RGB PIL image."""
    from PIL import Image

    array = image.permute(1, 2, 0).numpy()
    return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)


def save_grid(images, path: Path, nrow: int | None = None) -> tuple[int, int]:
    """uint8 (N, C, H, W) as one PNG: `nrow` per row (default: a square-ish grid), 2 px white padding.
    Grayscale stays grayscale. Returns (columns, rows)."""
    from torchvision.utils import make_grid

    nrow = nrow or math.ceil(math.sqrt(len(images)))
    grid = make_grid(images, nrow=nrow, padding=2, pad_value=255)  # (3, H', W'): channels repeated if C = 1
    with atomic_path(path) as tmp:
        to_pil(grid[:1] if images.shape[1] == 1 else grid).save(tmp)
    return nrow, math.ceil(len(images) / nrow)


def save_folder(images, folder: Path, prefix: str = "sample") -> list[Path]:
    """One PNG per image, <prefix>_0000.png, ... (zero-padded so they sort)."""
    width = max(4, len(str(len(images) - 1)))
    written = []
    for i, image in enumerate(images):
        with atomic_path(Path(folder) / f"{prefix}_{i:0{width}d}.png") as tmp:
            to_pil(image).save(tmp)
        written.append(Path(folder) / f"{prefix}_{i:0{width}d}.png")
    return written


def save_npz(path: Path, **arrays) -> None:
    """An .npz as np.savez writes it (one .npy per array, stored), with a fixed timestamp."""
    import numpy as np

    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w") as archive:
        for name, array in arrays.items():
            with archive.open(zipfile.ZipInfo(f"{name}.npy", date_time=NPZ_TIME), "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.ascontiguousarray(array), allow_pickle=False)


def save_gif(images, path: Path, frame_ms: int = GIF_FRAME_MS) -> None:
    """uint8 (N, C, H, W) as an animated GIF that loops forever (Pillow)."""
    frames = [to_pil(image) for image in images]
    with atomic_path(path) as tmp:
        frames[0].save(tmp, save_all=True, append_images=frames[1:], duration=frame_ms, loop=0)
