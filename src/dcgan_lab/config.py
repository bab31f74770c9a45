"""params.yaml -> typed, frozen config objects, validated once.

Nothing below this module reads YAML: stages call `load_params` and pass the
resulting dataclasses (or plain values taken from them) down. Every error names
the key, the value given and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import yaml

from .errors import ConfigError

@dataclass(frozen=True)
class DataConfig:
    dataset: Literal["mnist", "fashion-mnist", "cifar10", "folder"] = "mnist"
    # Where cifar10 lives (or is downloaded to) and the image folder for `folder`.
    root: str = "data/raw"
    fashion_mnist_dir: str = "/usr/share/datasets/fashion-mnist"
    download: bool = False
    image_size: int = 32
    pixel_range: tuple[float, float] = (-1.0, 1.0)
    # Keep only the first N training images (quick runs); null keeps all.
    train_limit: Optional[int] = None
    # `folder` data sets without train/ and test/ subfolders hold out this share for evaluation.
    test_fraction: float = 0.1


@dataclass(frozen=True)
class ModelConfig:
    latent_dim: int = 100
    g_width: int = 32
    d_width: int = 32
    d_head: Literal["conv", "gap"] = "conv"


@dataclass(frozen=True)
class TrainConfig:
    device: Literal["auto", "cpu", "cuda"] = "auto"
    batch_size: int = 64
    epochs: int = 2
    # Stop after this many optimizer steps (quick runs); null trains all epochs.
    max_steps: Optional[int] = None
    lr_g: float = 2.0e-4
    lr_d: float = 2.0e-4
    betas: tuple[float, float] = (0.5, 0.999)
    loss: Literal["bce", "hinge"] = "bce"
    # Losses are kept on the device and read back (one host sync) every log_every steps.
    log_every: int = 50
    sample_grid: int = 64
    # Every eval_every steps a quick FID (eval_samples generated vs as many held-out real images, same
    # extractor) picks the best generator, kept beside the last one; 0 turns it off.
    eval_every: int = 250
    eval_samples: int = 1000
    # A resumable checkpoint (models, optimizers, EMA, RNG streams, data order) every N steps and at
    # the end; a rerun with the same config resumes from it. 0: only at the end.
    checkpoint_every: int = 500
    # null: deterministic algorithms on CPU (bitwise repeatable), fast ones on CUDA.
    deterministic: Optional[bool] = None
    # Exponential moving average of G's weights, scored beside the raw G; 0 turns it off.
    ema_decay: float = 0.999
    # Divergence guard: a non-finite loss, or D's outputs on real and generated images both within
    # `saturation` of 0 or 1 for `collapse_patience` steps in a row, stops training (0: no collapse check).
    collapse_patience: int = 500
    saturation: float = 1.0e-3
    on_divergence: Literal["stop", "rollback"] = "stop"  # rollback: last checkpoint, both lrs halved
    max_rollbacks: int = 3
    # Testing the guard: a NaN lands in D's first weight before this step (once). Leave null.
    inject_nan_at: Optional[int] = None
    # How the train stage starts: `python`, or `torchrun ...` for data-parallel training (DDP) over
    # several processes, e.g. "torchrun --standalone --nproc_per_node=4"; batch_size is per process.
    launcher: str = "python"
    sync_batch_norm: bool = False  # under torchrun with CUDA: batch norm statistics over all ranks
    # Speed switches; null: on for CUDA, off for CPU (see speed.py). amp is bf16 where supported, else fp16.
    amp: Optional[bool] = None
    channels_last: Optional[bool] = True  # NHWC pays on CPUs too (oneDNN), 1.16-1.22x per step here
    compile: Optional[bool] = None
    # Batches from the whole training set on the device (false), or gathered from the memory-mapped set on
    # the host by a prefetching thread (true: for sets larger than the device's memory); the same batches
    # either way. null: stream when the set is over half the device's free memory.
    stream: Optional[bool] = None


@dataclass(frozen=True)
class AugmentConfig:
    """Differentiable augmentation applied to real and fake images before D."""

    translation: float = 0.0  # max shift as a fraction of the image side
    cutout: float = 0.0  # side of the erased square as a fraction of the image side
    color: bool = False  # brightness / saturation / contrast jitter
    flip: bool = False  # random horizontal flip (off for digits)

    @property
    def enabled(self) -> bool:
        return self.translation > 0 or self.cutout > 0 or self.color or self.flip


@dataclass(frozen=True)
class VariantConfig:
    g_activation: Literal["relu", "leaky_relu"] = "relu"
    g_batch_norm: bool = True
    d_batch_norm: bool = True
    d_spectral_norm: bool = False
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass(frozen=True)
class ClassifierConfig:
    width: int = 16
    epochs: int = 3
    max_steps: Optional[int] = None
    batch_size: int = 128
    lr: float = 2.0e-3
    seed: int = 0
    # The stage fails if test accuracy ends below this: a weak classifier makes FID meaningless.
    min_accuracy: float = 0.98


@dataclass(frozen=True)
class EvaluateConfig:
    feature_extractor: Literal["classifier", "inception"] = "classifier"
    inception_weights: Optional[str] = None
    n_samples: int = 10000
    # Real images taken from the split; null takes all of it.
    n_real: Optional[int] = None
    real_split: Literal["test", "val"] = "test"
    seed: int = 0
    batch_size: int = 500
    is_splits: int = 10
    kid_subset_size: int = 1000
    precision_recall: bool = True


@dataclass(frozen=True)
class AblationConfig:
    # Every variant is trained and evaluated once per seed (weights, data order, noise, augmentation).
    seeds: tuple[int, ...] = (0,)


@dataclass(frozen=True)
class MlflowConfig:
    # evaluate logs each run's scored generator as an MLflow model; with register, the one with the
    # lowest FID of the pipeline run becomes a new version of `model_name` in the model registry.
    register: bool = False
    model_name: str = "dcgan-lab-generator"


@dataclass(frozen=True)
class Params:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    variants: dict[str, VariantConfig] = field(default_factory=dict)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    ablation: AblationConfig = field(default_factory=AblationConfig)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)

    def variant(self, name: str) -> VariantConfig:
        if name not in self.variants:
            raise ConfigError(
                f"variant: unknown variant {name!r}; allowed: {', '.join(self.variants) or '(none defined)'}"
            )
        return self.variants[name]


# --------------------------------------------------------------------------- parsing


def _suggest(key: str, allowed: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(allowed), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _convert(value, tp, key: str):
    """Convert a YAML value to the annotated type `tp`, or raise ConfigError naming `key`."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        try:
            return _convert(value, inner[0], key)
        except ConfigError as exc:
            if type(None) not in args:
                raise
            raise ConfigError(f"{exc} (null is allowed too: see the comment in params.yaml)") from None
    if origin is Literal:
        if value not in args:
            raise ConfigError(
                f"{key}: {value!r} is not allowed; allowed: {', '.join(map(str, args))}"
                + (_suggest(str(value), map(str, args)) if isinstance(value, str) else "")
            )
        return value
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping of name -> settings, got {value!r}")
        return {str(k): _convert(v, args[1], f"{key}.{k}") for k, v in value.items()}
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return tuple(_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{key}: expected a list of {len(args)} numbers, got {value!r}")
        return tuple(_convert(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            hint = " (write floats like 2.0e-4: YAML reads 2e-4 as a string)" if isinstance(value, str) else ""
            raise ConfigError(f"{key}: expected a number, got {value!r}{hint}")
        if not math.isfinite(value):
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {tp!r} for {key}")  # a bug in this module, not in params


def _build(cls, raw, prefix: str):
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix or 'params'}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in names:
            full = f"{prefix}.{key}" if prefix else str(key)
            raise ConfigError(f"{full}: unknown key{_suggest(str(key), names)}; allowed: {', '.join(names)}")
    kwargs = {k: _convert(v, hints[k], f"{prefix}.{k}" if prefix else k) for k, v in raw.items()}
    return cls(**kwargs)


def _check(ok: bool, key: str, value, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {value!r} is out of range; allowed: {allowed}")


def _validate(p: Params) -> None:
    d, m, t, c, e = p.data, p.model, p.train, p.classifier, p.evaluate
    size = d.image_size
    _check(size >= 16 and size & (size - 1) == 0, "data.image_size", size, "a power of two >= 16 (16, 32, 64, ...)")
    _check(d.pixel_range in ((-1.0, 1.0), (0.0, 1.0)), "data.pixel_range", list(d.pixel_range), "[-1, 1] or [0, 1]")
    _check(d.train_limit is None or d.train_limit >= 1, "data.train_limit", d.train_limit, "null or an integer >= 1")
    _check(0 < d.test_fraction < 1, "data.test_fraction", d.test_fraction, "a number between 0 and 1")
    for key in ("latent_dim", "g_width", "d_width"):
        _check(getattr(m, key) >= 1, f"model.{key}", getattr(m, key), "an integer >= 1")
    _check(t.batch_size >= 1, "train.batch_size", t.batch_size, "an integer >= 1")
    _check(t.epochs >= 1, "train.epochs", t.epochs, "an integer >= 1")
    _check(t.max_steps is None or t.max_steps >= 1, "train.max_steps", t.max_steps, "null or an integer >= 1")
    for key in ("lr_g", "lr_d"):
        _check(getattr(t, key) > 0, f"train.{key}", getattr(t, key), "a number > 0")
    _check(all(0 <= b < 1 for b in t.betas), "train.betas", list(t.betas), "two numbers in [0, 1)")
    _check(t.log_every >= 1, "train.log_every", t.log_every, "an integer >= 1")
    _check(t.sample_grid >= 1, "train.sample_grid", t.sample_grid, "an integer >= 1")
    _check(t.eval_every >= 0, "train.eval_every", t.eval_every, "0 (off) or an integer >= 1")
    _check(t.eval_samples >= 2, "train.eval_samples", t.eval_samples, "an integer >= 2")
    _check(t.checkpoint_every >= 0, "train.checkpoint_every", t.checkpoint_every, "0 (end only) or an integer >= 1")
    _check(0 <= t.ema_decay < 1, "train.ema_decay", t.ema_decay, "0 (off) or a number in (0, 1)")
    _check(t.collapse_patience >= 0, "train.collapse_patience", t.collapse_patience, "0 (off) or an integer >= 1")
    _check(0 < t.saturation < 0.5, "train.saturation", t.saturation, "a number in (0, 0.5)")
    _check(t.max_rollbacks >= 0, "train.max_rollbacks", t.max_rollbacks, "an integer >= 0")
    _check(t.inject_nan_at is None or t.inject_nan_at >= 1, "train.inject_nan_at", t.inject_nan_at,
           "null or an integer >= 1")
    _check(t.launcher == "python" or t.launcher.split()[0] == "torchrun", "train.launcher", t.launcher,
           "python, or a torchrun command line such as 'torchrun --standalone --nproc_per_node=2'")
    if not p.variants:
        raise ConfigError("variants: at least one variant is required, e.g. baseline, improved, final")
    for name, v in p.variants.items():
        a = v.augment
        _check(0 <= a.translation < 0.5, f"variants.{name}.augment.translation", a.translation, "a number in [0, 0.5)")
        _check(0 <= a.cutout < 1, f"variants.{name}.augment.cutout", a.cutout, "a number in [0, 1)")
    _check(c.width >= 1, "classifier.width", c.width, "an integer >= 1")
    _check(c.epochs >= 1, "classifier.epochs", c.epochs, "an integer >= 1")
    _check(c.max_steps is None or c.max_steps >= 1, "classifier.max_steps", c.max_steps, "null or an integer >= 1")
    _check(c.batch_size >= 1, "classifier.batch_size", c.batch_size, "an integer >= 1")
    _check(c.lr > 0, "classifier.lr", c.lr, "a number > 0")
    _check(0 <= c.min_accuracy <= 1, "classifier.min_accuracy", c.min_accuracy, "a number in [0, 1]")
    _check(e.n_samples >= 2, "evaluate.n_samples", e.n_samples, "an integer >= 2")
    _check(e.n_real is None or e.n_real >= 2, "evaluate.n_real", e.n_real, "null or an integer >= 2")
    _check(e.batch_size >= 1, "evaluate.batch_size", e.batch_size, "an integer >= 1")
    _check(1 <= e.is_splits <= e.n_samples, "evaluate.is_splits", e.is_splits, "an integer in [1, n_samples]")
    seeds = p.ablation.seeds
    _check(len(seeds) >= 1 and len(set(seeds)) == len(seeds) and min(seeds) >= 0, "ablation.seeds", list(seeds),
           "a non-empty list of distinct integers >= 0")
    _check(e.kid_subset_size >= 2, "evaluate.kid_subset_size", e.kid_subset_size, "an integer >= 2")
    name = p.mlflow.model_name
    _check(bool(name.strip()) and not set("/:%") & set(name), "mlflow.model_name", name,
           "a non-empty registered model name without '/', ':' or '%'")


def parse_params(raw: dict) -> Params:
    params = _build(Params, raw, "")
    _validate(params)
    return params


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: params file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    return parse_params(raw or {})


def to_dict(obj) -> dict:
    """A config dataclass as plain YAML-able values (tuples become lists)."""
    return yaml.safe_load(yaml.safe_dump(_plain(obj)))


def _plain(obj):
    if dataclasses.is_dataclass(obj):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def flatten(d: dict, prefix: str = "") -> dict[str, object]:
    """{'a': {'b': 1}} -> {'a.b': 1}, for MLflow params."""
    out: dict[str, object] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out
