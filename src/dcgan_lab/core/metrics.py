"""The scores the report compares: one home for each key's label, which direction is better, its name in
ablation.json, and which keys may be a study's primary endpoint (`ablation.primary`).

Keys are the evaluate stage's per-run entries (metrics/eval.json). The order here is the order of the
report's per-variant columns.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    label: str
    higher_is_better: bool
    short: str  # the name in ablation.json ("is_mean_mean" would read badly in `dvc exp show`)
    compared: bool = True  # the report compares variants on it (exploratory unless it is the primary)
    fid_inf: str | None = None  # an FID's sample-size-free counterpart (Chong & Forsyth 2020), same generator


METRICS: dict[str, Metric] = {
    "fid": Metric("FID", False, "fid", fid_inf="fid_inf"),
    "intra_fid_mean": Metric("mean intra-FID", False, "intra_fid"),
    "kid_mean": Metric("KID", False, "kid"),
    "is_mean": Metric("IS", True, "is"),
    "precision": Metric("precision", True, "precision"),
    "recall": Metric("recall", True, "recall"),
    "classes_covered": Metric("classes covered", True, "classes_covered", compared=False),
    "class_kl_real": Metric("KL(classes ‖ real)", False, "class_kl_real", compared=False),
    "best_fid": Metric("FID of best checkpoint", False, "best_fid", fid_inf="best_fid_inf"),
    "ema_fid": Metric("FID of EMA G", False, "ema_fid", fid_inf="ema_fid_inf"),
    "ema_fid_delta": Metric("EMA − raw FID", False, "ema_fid_delta", compared=False),
    "fid_inf": Metric("FID∞", False, "fid_inf"),
    "best_fid_inf": Metric("FID∞ of best checkpoint", False, "best_fid_inf"),
    "ema_fid_inf": Metric("FID∞ of EMA G", False, "ema_fid_inf"),
    "conditional_accuracy": Metric("conditional accuracy", True, "conditional_accuracy", compared=False),
}

# What `ablation.primary` may name: a score every run of a study has (not conditional_accuracy, which only
# conditional generators have, nor the descriptive class counts and EMA − raw difference).
PRIMARY = tuple(key for key, m in METRICS.items() if m.compared)


def label(key: str) -> str:
    return METRICS[key].label if key in METRICS else key


def short(key: str) -> str:
    return METRICS[key].short if key in METRICS else key
