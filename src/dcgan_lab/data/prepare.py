"""Stage `prepare`: a data set -> uint8 splits fitted to `data.image_size`, plus their manifest.

`prepare` writes `<out>/train.pt`, `<out>/test.pt` (and `val.pt` where the data set has one) and
`<out>/manifest.json`; the directory appears whole or not at all. A `folder` data set is decoded by
DataLoader workers straight into files, so it need not fit in memory.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..core import paths
from ..core.config import DataConfig
from ..core.files import atomic_dir, save_torch
from .sources import decode_to_file, fit_size, load_splits, plan_folder
from .splits import tensor_sha256


def prepare(cfg: DataConfig, out_dir: Path, cache_dir: Path | None = None) -> dict:
    """Load, resize, and write the splits + manifest to `out_dir` atomically. Returns the manifest."""
    with atomic_dir(out_dir) as tmp:
        if cfg.dataset == "folder":
            # Decoded into files beside the outputs, not into memory: any number of images fits.
            plans, classes = plan_folder(Path(cfg.root), cfg.test_fraction)
            plans["train"] = plans["train"][: cfg.train_limit]
            splits = {name: decode_to_file(samples, cfg.image_size, tmp / f"{name}.uint8")
                      for name, samples in plans.items()}
        else:
            splits, classes = load_splits(cfg, cache_dir or paths.cache_dir())
            if cfg.train_limit is not None:
                x, y = splits["train"]
                splits["train"] = (x[: cfg.train_limit], y[: cfg.train_limit])
        manifest = {"dataset": cfg.dataset, "image_size": cfg.image_size, "classes": classes, "splits": {}}
        for name, (x, y) in splits.items():
            x = fit_size(x, cfg.image_size).contiguous()
            save_torch({"images": x, "labels": y}, paths.split_file(tmp, name))
            manifest["splits"][name] = {
                "n": len(x),
                "shape": list(x.shape[1:]),
                "dtype": "uint8",
                "sha256": tensor_sha256(x),
            }
            (tmp / f"{name}.uint8").unlink(missing_ok=True)  # folder: the .pt file holds the same bytes
        paths.manifest_file(tmp).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
