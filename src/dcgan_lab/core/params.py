"""Read params.yaml into the typed config of `core.config`, and check it once, at the edge.

Stages call `load_params` (through `core.stage.run_stage`) and pass the resulting dataclasses,
or plain values taken from them, down. Every error names the key, the value given and what is
allowed. This is the one module that parses YAML.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from pathlib import Path
from typing import Literal

import yaml

from .config import (AblationConfig, ClassifierConfig, DataConfig, EvaluateConfig, Params, SecondClassifierConfig,
                     TrainConfig, VariantConfig)
from .errors import ConfigError
from .metrics import PRIMARY


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
    """Every range and cross-key rule of params.yaml, section by section: the first one broken raises."""
    _validate_data(p.data)
    for key in ("latent_dim", "g_width", "d_width"):
        _check(getattr(p.model, key) >= 1, f"model.{key}", getattr(p.model, key), "an integer >= 1")
    _validate_train(p.train)
    if not p.variants:
        raise ConfigError("variants: at least one variant is required, e.g. baseline, improved, final")
    for name, v in p.variants.items():
        _validate_variant(p, name, v)
    _validate_classifier(p.classifier)
    _validate_second_classifier(p.second_classifier)
    _validate_evaluate(p.evaluate)
    _validate_ablation(p)
    name = p.mlflow.model_name
    _check(bool(name.strip()) and not set("/:%") & set(name), "mlflow.model_name", name,
           "a non-empty registered model name without '/', ':' or '%'")


def _validate_data(d: DataConfig) -> None:
    size = d.image_size
    _check(size >= 16 and size & (size - 1) == 0, "data.image_size", size, "a power of two >= 16 (16, 32, 64, ...)")
    _check(d.pixel_range in ((-1.0, 1.0), (0.0, 1.0)), "data.pixel_range", list(d.pixel_range), "[-1, 1] or [0, 1]")
    _check(d.train_limit is None or d.train_limit >= 1, "data.train_limit", d.train_limit, "null or an integer >= 1")
    _check(0 < d.test_fraction < 1, "data.test_fraction", d.test_fraction, "a number between 0 and 1")


def _validate_train(train: TrainConfig) -> None:
    _check(train.batch_size >= 1, "train.batch_size", train.batch_size, "an integer >= 1")
    _check(train.epochs >= 1, "train.epochs", train.epochs, "an integer >= 1")
    _check(train.max_steps is None or train.max_steps >= 1, "train.max_steps", train.max_steps,
           "null or an integer >= 1")
    for key in ("lr_g", "lr_d"):
        _check(getattr(train, key) > 0, f"train.{key}", getattr(train, key), "a number > 0")
    _check(all(0 <= b < 1 for b in train.betas), "train.betas", list(train.betas), "two numbers in [0, 1)")
    _check(train.log_every >= 1, "train.log_every", train.log_every, "an integer >= 1")
    _check(train.sample_grid >= 1, "train.sample_grid", train.sample_grid, "an integer >= 1")
    _check(train.eval_every >= 0, "train.eval_every", train.eval_every, "0 (off) or an integer >= 1")
    _check(train.eval_samples >= 2, "train.eval_samples", train.eval_samples, "an integer >= 2")
    _check(train.checkpoint_every >= 0, "train.checkpoint_every", train.checkpoint_every,
           "0 (end only) or an integer >= 1")
    _check(0 <= train.ema_decay < 1, "train.ema_decay", train.ema_decay, "0 (off) or a number in (0, 1)")
    _check(train.ema_bn_batches >= 0, "train.ema_bn_batches", train.ema_bn_batches,
           "0 (off: the live G's statistics copied) or an integer >= 1")
    _check(train.collapse_patience >= 0, "train.collapse_patience", train.collapse_patience,
           "0 (off) or an integer >= 1")
    _check(0 < train.saturation < 0.5, "train.saturation", train.saturation, "a number in (0, 0.5)")
    _check(train.max_rollbacks >= 0, "train.max_rollbacks", train.max_rollbacks, "an integer >= 0")
    _check(train.inject_nan_at is None or train.inject_nan_at >= 1, "train.inject_nan_at", train.inject_nan_at,
           "null or an integer >= 1")
    _check(train.launcher == "python" or train.launcher.split()[0] == "torchrun", "train.launcher", train.launcher,
           "python, or a torchrun command line such as 'torchrun --standalone --nproc_per_node=2'")
    _check(train.d_steps >= 1, "train.d_steps", train.d_steps, "an integer >= 1")
    _check(train.gp_weight >= 0, "train.gp_weight", train.gp_weight, "a number >= 0")
    _check(train.mode_seeking >= 0, "train.mode_seeking", train.mode_seeking, "a number >= 0 (0: off)")


def _validate_classifier(c: ClassifierConfig) -> None:
    _check(c.width >= 1, "classifier.width", c.width, "an integer >= 1")
    _check(c.epochs >= 1, "classifier.epochs", c.epochs, "an integer >= 1")
    _check(c.max_steps is None or c.max_steps >= 1, "classifier.max_steps", c.max_steps, "null or an integer >= 1")
    _check(c.batch_size >= 1, "classifier.batch_size", c.batch_size, "an integer >= 1")
    _check(c.lr > 0, "classifier.lr", c.lr, "a number > 0")
    _check(0 <= c.min_accuracy <= 1, "classifier.min_accuracy", c.min_accuracy, "a number in [0, 1]")


def _validate_second_classifier(c: SecondClassifierConfig) -> None:
    for key in ("channels", "features", "epochs", "batch_size"):
        _check(getattr(c, key) >= 1, f"second_classifier.{key}", getattr(c, key), "an integer >= 1")
    _check(c.max_steps is None or c.max_steps >= 1, "second_classifier.max_steps", c.max_steps,
           "null or an integer >= 1")
    _check(c.lr > 0, "second_classifier.lr", c.lr, "a number > 0")
    for key in ("momentum", "dropout"):
        _check(0 <= getattr(c, key) < 1, f"second_classifier.{key}", getattr(c, key), "a number in [0, 1)")
    _check(c.weight_decay >= 0, "second_classifier.weight_decay", c.weight_decay, "a number >= 0")
    _check(0 <= c.min_accuracy <= 1, "second_classifier.min_accuracy", c.min_accuracy, "a number in [0, 1]")


def _validate_evaluate(e: EvaluateConfig) -> None:
    _check(e.n_samples >= 2, "evaluate.n_samples", e.n_samples, "an integer >= 2")
    _check(e.n_real is None or e.n_real >= 2, "evaluate.n_real", e.n_real, "null or an integer >= 2")
    _check(e.batch_size >= 1, "evaluate.batch_size", e.batch_size, "an integer >= 1")
    _check(1 <= e.is_splits <= e.n_samples, "evaluate.is_splits", e.is_splits, "an integer in [1, n_samples]")
    _check(e.kid_subset_size >= 2, "evaluate.kid_subset_size", e.kid_subset_size, "an integer >= 2")
    for key in ("collapse_diversity", "collapse_recall"):
        _check(0 <= getattr(e, key) <= 1, f"evaluate.{key}", getattr(e, key), "0 (off) or a number in (0, 1]")
    if e.collapse_recall > 0 and not e.precision_recall:
        raise ConfigError(f"evaluate.collapse_recall: {e.collapse_recall!r} needs recall, and "
                          f"evaluate.precision_recall is false; allowed with precision_recall false: 0 (off)")


def _validate_ablation(p: Params) -> None:
    a = p.ablation
    _check(len(a.variants) >= 1 and len(set(a.variants)) == len(a.variants), "ablation.variants", list(a.variants),
           "a non-empty list of distinct names from `variants:`")
    for name in a.variants:
        if name not in p.variants:
            raise ConfigError(f"ablation.variants: {name!r} is not a variant; allowed: {', '.join(p.variants)}"
                              + _suggest(name, p.variants))
    seeds = a.seeds
    _check(len(seeds) >= 1 and len(set(seeds)) == len(seeds) and min(seeds) >= 0, "ablation.seeds", list(seeds),
           "a non-empty list of distinct integers >= 0")
    if a.primary not in PRIMARY:
        raise ConfigError(f"ablation.primary: {a.primary!r} is not a metric the report can decide on; allowed: "
                          f"{', '.join(PRIMARY)}" + _suggest(a.primary, PRIMARY))
    _check(a.margin > 0, "ablation.margin", a.margin, f"a number > 0, in the units of {a.primary}")
    _check(0 < a.alpha < 0.5, "ablation.alpha", a.alpha, "a number in (0, 0.5)")
    _validate_looks(a)


def _validate_looks(a: AblationConfig) -> None:
    """The sequential design: looks the design can name, and `seeds` the first seeds of its sequence (so each look
    uses the seeds it declared, whatever order the runs ended in)."""
    order = list(a.seed_sequence)
    _check(len(order) >= 1 and len(set(order)) == len(order) and min(order) >= 0, "ablation.seed_sequence", order,
           "a non-empty list of distinct integers >= 0, the design's seeds in the order they are used")
    if a.looks is None:
        return
    looks = list(a.looks)
    _check(len(looks) >= 1 and all(x < y for x, y in zip(looks, looks[1:])), "ablation.looks", looks,
           "null (a fixed design) or a strictly increasing list of seeds per variant, e.g. [5, 10]")
    _check(looks[0] >= 2, "ablation.looks", looks, "looks of at least 2 seeds each (a t test needs 2)")
    _check(looks[-1] <= len(order), "ablation.looks", looks,
           f"looks of at most {len(order)} seeds, the length of ablation.seed_sequence")
    if list(a.seeds) != order[: len(a.seeds)]:
        raise ConfigError(f"ablation.seeds: {list(a.seeds)} is not the start of ablation.seed_sequence {order}; "
                          f"allowed with ablation.looks set: its first seeds in its order, e.g. {order[:looks[0]]} "
                          f"(looks: null runs a fixed design on any seeds)")


def _validate_variant(p: Params, name: str, v: VariantConfig) -> None:
    a, key = v.augment, f"variants.{name}"
    _check(0 <= a.translation < 0.5, f"{key}.augment.translation", a.translation, "a number in [0, 0.5)")
    _check(0 <= a.cutout < 1, f"{key}.augment.cutout", a.cutout, "a number in [0, 1)")
    _check(v.d_steps is None or v.d_steps >= 1, f"{key}.d_steps", v.d_steps, "null (train.d_steps) or an integer >= 1")
    _check(v.betas is None or all(0 <= b < 1 for b in v.betas), f"{key}.betas", v.betas and list(v.betas),
           "null (train.betas) or two numbers in [0, 1)")
    _check(v.g_embedding_dim is None or v.g_embedding_dim >= 1, f"{key}.g_embedding_dim", v.g_embedding_dim,
           "null (model.latent_dim) or an integer >= 1")
    _check(v.mode_seeking is None or v.mode_seeking >= 0, f"{key}.mode_seeking", v.mode_seeking,
           "null (train.mode_seeking) or a number >= 0 (0: off)")
    _check(v.g_embedding_std > 0, f"{key}.g_embedding_std", v.g_embedding_std, "a number > 0")
    if v.conditional and v.g_conditioning == "cbn" and not v.g_batch_norm:
        raise ConfigError(f"{key}.g_conditioning: cbn (conditional batch norm) needs {key}.g_batch_norm: true; "
                          "allowed without batch norm in G: concat")
    if p.train_for(v).loss == "wgan-gp" and v.d_batch_norm:
        loss_key = f"{key}.loss" if v.loss else "train.loss"
        raise ConfigError(f"{key}.d_batch_norm: true conflicts with {loss_key}: wgan-gp (the gradient penalty is "
                          f"per sample and batch norm mixes the samples of a batch); allowed with wgan-gp: false")


def parse_params(raw: dict) -> Params:
    params = _build(Params, raw, "")
    _validate(params)
    return params


def read_raw(text: str, source: str | Path) -> dict:
    """The YAML text of a params file as a plain dict (`source` names it in errors)."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:  # str(exc) spans several lines (context, the line, a caret): say it in one
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = ": ".join(filter(None, (getattr(exc, "context", None), getattr(exc, "problem", None))))
        what = what or "a syntax error"
        raise ConfigError(f"{source}: not valid YAML ({what}{where})") from exc
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of sections, got {type(raw).__name__}")
    return raw or {}


def load_params(path: str | Path) -> Params:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: params file not found")
    return parse_params(read_raw(path.read_text(), path))


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
