"""Everything a training run needs to continue exactly where it stopped, and its file on disk.

A resumable checkpoint holds G, D, both optimizers, the EMA generator, the step, this epoch's data
order, every random stream (ours and the global torch/CUDA/numpy/python ones), the loss history,
the best generator so far and a tag: the hash of the config, seed, training data and package code.
A rerun with the same tag resumes; any other tag starts fresh and says why.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..core.errors import CheckpointError
from ..core.files import atomic_torch_save, atomic_write_text, code_hash, load_torch
from ..gan.models import Discriminator, Generator
from .ema import EMA
from .spec import RunSpec

FORMAT = 1


def cpu_copy(obj):
    """A deep copy with every tensor on the CPU: a snapshot that later in-place updates cannot touch."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(cpu_copy(v) for v in obj)
    return obj


def global_rng_state() -> dict:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [kind, keys.tolist(), pos, has_gauss, cached],
        "python": random.getstate(),
    }


def set_global_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


@dataclass
class TrainState:
    """The mutable part of a training run. `fit` owns one; checkpoints and rollbacks copy it."""

    g: Generator
    d: Discriminator
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    ema: EMA | None
    data_gen: torch.Generator  # this run's data order
    noise_gen: torch.Generator  # latent vectors
    aug_gen: torch.Generator  # augmentation
    step: int = 0  # optimizer steps done
    order: torch.Tensor | None = None  # (N,) this epoch's permutation of the training set
    history: list[dict[str, float]] = field(default_factory=list)  # one row per step
    best: dict | None = None  # {"score", "step", "state"}: the generator with the lowest eval score
    timings: list[dict[str, float]] = field(default_factory=list)  # one row per epoch
    lr_scale: float = 1.0  # halved by each rollback
    rollbacks: int = 0
    seconds: float = 0.0  # training time over all sessions of this run
    rank: int = 0  # this process's rank under torchrun; its random streams are its own

    def state_dict(self) -> dict:
        return cpu_copy({
            "g": self.g.state_dict(), "d": self.d.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "ema": self.ema.model.state_dict() if self.ema else None,
            "generators": {k: getattr(self, k).get_state() for k in ("data_gen", "noise_gen", "aug_gen")},
            "global_rng": global_rng_state(),
            "step": self.step, "order": self.order, "history": list(self.history), "best": self.best,
            "timings": list(self.timings), "lr_scale": self.lr_scale, "rollbacks": self.rollbacks,
            "seconds": self.seconds,
        })

    def load_state_dict(self, sd: dict) -> None:
        self.g.load_state_dict(sd["g"])
        self.d.load_state_dict(sd["d"])
        self.opt_g.load_state_dict(sd["opt_g"])
        self.opt_d.load_state_dict(sd["opt_d"])
        if self.ema is not None:
            if sd["ema"] is None:
                raise CheckpointError("resumable checkpoint has no EMA generator but train.ema_decay > 0")
            self.ema.model.load_state_dict(sd["ema"])
        gens = sd["generators"]  # one dict per rank (see loop.snapshot), or this rank's alone
        for k, v in (gens[self.rank] if isinstance(gens, list) else gens).items():
            getattr(self, k).set_state(v)
        set_global_rng_state(sd["global_rng"])
        self.step, self.order, self.best = sd["step"], sd["order"], sd["best"]
        self.history, self.timings = list(sd["history"]), list(sd["timings"])
        self.lr_scale, self.rollbacks, self.seconds = sd["lr_scale"], sd["rollbacks"], sd["seconds"]
        self.set_lr_scale(self.lr_scale)

    def set_lr_scale(self, scale: float) -> None:
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = group.setdefault("initial_lr", group["lr"]) * scale
        self.lr_scale = scale


def standing_statistics_seed(seed: int) -> int:
    """The noise seed of the saved EMA generator's standing statistics (ema.standing_statistics, train.
    ema_bn_batches): stream k = 8 of the run's seed, next to new_state's k = 1..7, so it draws none of theirs."""
    return 1000 * seed + 8


def new_state(spec: RunSpec, device: torch.device, rank: int = 0) -> TrainState:
    """Fresh models, optimizers and random streams for one seed. Separate seeded streams (weight init, data
    order, noise, augmentation), so that changing one variant flag changes none of the others' draws: runs of
    two variants with the same seed see the same init where shapes match, the same batches and the same noise.
    Under torchrun every rank shares init and data order; rank r > 0 draws its own noise and augmentation."""
    train, seed = spec.train, spec.seed
    base = 1000 * seed

    def stream(k: int) -> int:
        return base + k if rank == 0 else int(np.random.SeedSequence([seed, k, rank]).generate_state(1)[0])

    # Weight init from streams of its own per network (k = 4, 5 for G; 6, 7 for D): every variant trained
    # with this seed starts from the same conv weights where shapes match. The global seed covers the
    # rest (spectral norm's first power-iteration vectors). DDP also broadcasts rank 0's weights.
    torch.manual_seed(base)
    g = Generator(spec.g, init_seed=base + 4).to(device)
    d = Discriminator(spec.d, init_seed=base + 6).to(device)
    fused = device.type == "cuda" or None  # fused Adam (one kernel for all parameters) on CUDA
    return TrainState(
        g=g, d=d,
        opt_g=torch.optim.Adam(g.parameters(), lr=train.lr_g, betas=train.betas, fused=fused),
        opt_d=torch.optim.Adam(d.parameters(), lr=train.lr_d, betas=train.betas, fused=fused),
        ema=EMA(g, train.ema_decay) if train.ema_decay else None,
        data_gen=torch.Generator().manual_seed(base + 1),
        noise_gen=torch.Generator(device=device).manual_seed(stream(2)),
        aug_gen=torch.Generator(device=device).manual_seed(stream(3)),
        rank=rank,
    )


# --------------------------------------------------------------------------- on disk


def resume_tag(config: dict, seed: int, data_sha256: str) -> str:
    """What must match for a checkpoint to be continued: the run's config, seed, training data, code and format."""
    blob = json.dumps({"config": config, "seed": seed, "data": data_sha256, "code": code_hash(),
                       "format": FORMAT}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def save_checkpoint(path: Path, tag: str, state: dict, meta: dict, run: dict | None = None) -> None:
    """`state` is a TrainState.state_dict() snapshot, `run` the run description (spec.RunSpec.to_dict); the
    write is atomic (temp file + rename)."""
    atomic_torch_save({"format": FORMAT, "tag": tag, "meta": meta, "run": run, "state": state}, path)
    # A small readable sidecar, so people (and tests) can see progress without torch.
    atomic_write_text(Path(path).with_suffix(".json"), json.dumps({"step": state["step"], "tag": tag, **meta}) + "\n")


def load_checkpoint(path: Path, tag: str, quiet: bool = False) -> dict | None:
    """The checkpoint at `path` if it was made by this config and code; None (saying why) if there is
    none or it belongs to another config. An unreadable file is an error: deleting it is the user's call."""
    path = Path(path)
    if not path.exists():
        return None
    blob = load_torch(path, CheckpointError, "resumable checkpoint", "delete it to train from scratch")
    if not isinstance(blob, dict) or "tag" not in blob:
        raise CheckpointError(f"{path}: not a resumable checkpoint (it has no tag); delete it to train from scratch")
    if blob["tag"] != tag:
        if not quiet:
            print(f"{path} was written by another config, seed, data set or code version: starting fresh",
                  file=sys.stderr)
        return None
    return blob
