"""SRC: where a subcommand's generator (and discriminator) come from.

A checkpoint file, a model directory as the train stage writes it (models/<variant>/seed<k>: checkpoint.pt
with G, D and the EMA of G; best.pt with the best generator alone), or an MLflow model URI (one generator,
as evaluate logs it with tracking.registry.log_generator). Every way it can go wrong is a UserError that
names SRC or the flag, and what would work.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import UserError
from ..core.paths import ModelDir

MLFLOW_SCHEMES = ("runs:/", "models:/")
WHAT_SRC_IS = ("a checkpoint (models/<variant>/seed<k>/checkpoint.pt or best.pt), a model directory "
               "(models/<variant>/seed<k>) or an MLflow model URI (runs:/<run_id>/generator, models:/<name>/<version>)")


@dataclass(frozen=True)
class Source:
    """SRC resolved: an MLflow model URI, or the file G comes from and the file D comes from (if any)."""

    name: str  # SRC as given, for messages
    uri: str | None = None
    generator_file: Path | None = None
    discriminator_file: Path | None = None  # None: only a generator here (best.pt, an MLflow model)
    ema: bool = False

    @property
    def generator_name(self) -> str:
        """What the generator is, for what a subcommand prints: 'models/final/seed0/checkpoint.pt (EMA)'."""
        return self.uri or f"{self.generator_file}{' (EMA)' if self.ema else ''}"


def resolve(src: str, ema: bool = False, best: bool = False) -> Source:
    """Which files (or which MLflow model) SRC and --ema/--best mean; nothing is loaded yet."""
    if src.startswith(MLFLOW_SCHEMES):
        if ema or best:
            raise UserError(f"--{'ema' if ema else 'best'}: {src} is an MLflow model, one generator; --ema and "
                            f"--best pick a generator in a model directory (models/<variant>/seed<k>) or checkpoint")
        return Source(src, uri=src)
    path = Path(src)
    if path.is_dir():
        return _from_directory(src, ModelDir(path), ema, best)
    if not path.exists():
        raise UserError(f"{src}: no such file or directory; SRC is {WHAT_SRC_IS}")
    if best:
        raise UserError(f"--best: {src} is a file; --best picks best.pt in a model directory: pass the directory "
                        f"({path.parent}) or {path.parent / 'best.pt'} itself")
    from ..gan.checkpoint import has_discriminator

    return Source(src, generator_file=path, discriminator_file=path if has_discriminator(path) else None, ema=ema)


def _from_directory(src: str, model: ModelDir, ema: bool, best: bool) -> Source:
    from ..gan.checkpoint import has_discriminator

    file = model.best if best else model.checkpoint
    if not file.is_file():
        when = " (best.pt only where train.eval_every > 0)" if best else ""
        raise UserError(f"{src}: no {file.name} in this directory; SRC is a model directory as the train stage "
                        f"writes it (models/<variant>/seed<k>: checkpoint.pt, best.pt{when}), a checkpoint or "
                        f"an MLflow model URI")
    d_file = model.checkpoint if model.checkpoint.is_file() and has_discriminator(model.checkpoint) else None
    return Source(src, generator_file=file, discriminator_file=d_file, ema=ema)


def load_generator(source: Source):
    """The generator in eval mode on the CPU."""
    if source.uri:
        return _load_mlflow(source.uri)
    from ..gan import checkpoint

    if source.ema and not checkpoint.has_ema(source.generator_file):
        raise UserError(f"--ema: {source.generator_file} holds no EMA generator (trained with train.ema_decay: 0, "
                        f"or a best.pt); drop --ema, or pass a checkpoint.pt trained with an EMA")
    return checkpoint.load_generator(source.generator_file, ema=source.ema)


def load_discriminator(source: Source):
    """The discriminator in eval mode, or None where SRC holds a generator alone."""
    from ..gan.checkpoint import load_discriminator as load

    return load(source.discriminator_file) if source.discriminator_file else None


def why_no_discriminator(source: Source) -> str:
    held = "an MLflow model holds" if source.uri else f"{source.generator_file} holds"
    return f"no discriminator: {held} the generator only (a model directory or its checkpoint.pt has both)"


def mlflow_store() -> str:
    """MLFLOW_TRACKING_URI, else the project's store (tracking/store.py). Read as is: a sampler has nothing to
    gain from the pipeline's fallback to an offline store when a server does not answer."""
    from ..tracking.store import tracking_uri

    return os.environ.get("MLFLOW_TRACKING_URI") or tracking_uri()


def _load_mlflow(uri: str):
    import logging

    from ..tracking.store import sqlite_path

    store = mlflow_store()
    db = sqlite_path(store)
    if db is not None and not db.is_file():  # MLflow would create an empty store
        raise UserError(f"{uri}: there is no MLflow store at {db}; run from the repository root (./mlflow.db) "
                        f"or set MLFLOW_TRACKING_URI")
    # A failure is one line on stderr: no download progress bars or warnings before it.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    import mlflow

    from ..tracking.registry import load_generator as load

    mlflow.set_tracking_uri(store)
    try:
        return load(uri)
    except Exception as exc:  # MLflow raises its own and OS errors for unknown runs, models and files
        first_line = next((line for line in str(exc).splitlines() if line.strip()), "")
        raise UserError(f"{uri}: cannot load this MLflow model from {store} ({type(exc).__name__}: {first_line}); "
                        f"SRC is {WHAT_SRC_IS}") from exc


def class_labels(g, klass: int | None, n: int, src: str, cycle: bool):
    """G's labels (n,), or None for an unconditional G. A conditional G (spec.n_classes > 0) gets class
    `klass` for every sample; without one, the classes in turn (`cycle`) or an error that asks for one."""
    import torch

    n_classes = getattr(g.spec, "n_classes", 0)
    if n_classes <= 0:
        if klass is not None:
            raise UserError(f"--class: {src} is not a conditional model (its generator takes no class); "
                            f"--class works with generators trained with classes (spec.n_classes > 0)")
        return None
    if klass is None and not cycle:
        raise UserError(f"--class: {src} is a conditional model; pick a class with --class K, 0 <= K < {n_classes}")
    if klass is not None and klass >= n_classes:
        raise UserError(f"--class: {klass} is out of range for {src}; allowed: 0 <= K < {n_classes}")
    return torch.arange(n) % n_classes if klass is None else torch.full((n,), klass, dtype=torch.long)
