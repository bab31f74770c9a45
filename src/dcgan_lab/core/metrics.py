"""Every score the evaluate stage writes, in one table: its key (in metrics/eval.json, and its MLflow metric name),
its label, which direction is better, its name in ablation.json, whether it may be a study's primary endpoint
(`ablation.primary`), and whether the report shows it.

Adding a metric is one line here, once evaluate computes it: evaluate logs it to MLflow, and the report, `compare`
and `experiments` show it. A key `best_<key>` or `ema_<key>`, with <key> in the table too, is <key> scored on the
best checkpoint or on the EMA generator: evaluate copies exactly those from their evaluations (`scored_for`).
The order here is the order of the report's per-variant columns, and of the best_ and ema_ keys in eval.json.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """One row of the table. primary_eligible: it may be `ablation.primary`, as a score every run of a study has
    (not conditional_accuracy, which only conditional generators have, nor a descriptive count or difference); the
    report compares variants on every such score (exploratory unless it is the primary)."""

    label: str  # its name in the report's tables and sentences
    higher_is_better: bool
    short: str  # the name in ablation.json ("is_mean_mean" would read badly in `dvc exp show`)
    primary_eligible: bool = True
    in_report: bool = True  # a column of the report's per-variant tables and ablation.json; else eval.json and MLflow
    fid_inf: str | None = None  # an FID's sample-size-free counterpart (Chong & Forsyth 2020), same generator
    spread: str | None = None  # the key of its standard deviation (over IS splits, KID subsets), logged beside it


def unreported(label: str, higher_is_better: bool, short: str) -> Metric:
    """A score in eval.json and MLflow only: no column of the report, so no study's primary either."""
    return Metric(label, higher_is_better, short, primary_eligible=False, in_report=False)


METRICS: dict[str, Metric] = {
    "fid": Metric("FID", False, "fid", fid_inf="fid_inf"),
    "intra_fid_mean": Metric("mean intra-FID", False, "intra_fid"),
    "kid_mean": Metric("KID", False, "kid", spread="kid_std"),
    "is_mean": Metric("IS", True, "is", spread="is_std"),
    "precision": Metric("precision", True, "precision"),
    "recall": Metric("recall", True, "recall"),
    "intra_precision_mean": Metric("mean intra-precision", True, "intra_precision"),
    "intra_recall_mean": Metric("mean intra-recall", True, "intra_recall"),
    # 1 is as varied as the data: "higher" holds below 1, where generators are; above 1 (noise) precision falls.
    # No study decides on it for that reason; the alarm reads each class's ratio, not this mean.
    "intra_diversity_mean": Metric("mean diversity ratio", True, "intra_diversity", primary_eligible=False),
    "classes_covered": Metric("classes covered", True, "classes_covered", primary_eligible=False),
    "class_kl_uniform": unreported("KL(classes ‖ uniform)", False, "class_kl_uniform"),
    "class_kl_real": Metric("KL(classes ‖ real)", False, "class_kl_real", primary_eligible=False),
    "best_fid": Metric("FID of best checkpoint", False, "best_fid", fid_inf="best_fid_inf"),
    "ema_fid": Metric("FID of EMA G", False, "ema_fid", fid_inf="ema_fid_inf"),
    "ema_fid_delta": Metric("EMA − raw FID", False, "ema_fid_delta", primary_eligible=False),
    "fid_inf": Metric("FID∞", False, "fid_inf"),
    "best_fid_inf": Metric("FID∞ of best checkpoint", False, "best_fid_inf"),
    "ema_fid_inf": Metric("FID∞ of EMA G", False, "ema_fid_inf"),
    "best_is_mean": unreported("IS of best checkpoint", True, "best_is_mean"),
    "best_kid_mean": unreported("KID of best checkpoint", False, "best_kid_mean"),
    "best_precision": unreported("precision of best checkpoint", True, "best_precision"),
    "best_recall": unreported("recall of best checkpoint", True, "best_recall"),
    "best_intra_precision_mean": unreported("mean intra-precision of best checkpoint", True, "best_intra_precision"),
    "best_intra_recall_mean": unreported("mean intra-recall of best checkpoint", True, "best_intra_recall"),
    "best_intra_diversity_mean": unreported("mean diversity ratio of best checkpoint", True, "best_intra_diversity"),
    "ema_is_mean": unreported("IS of EMA G", True, "ema_is_mean"),
    "ema_kid_mean": unreported("KID of EMA G", False, "ema_kid_mean"),
    "ema_precision": unreported("precision of EMA G", True, "ema_precision"),
    "ema_recall": unreported("recall of EMA G", True, "ema_recall"),
    "ema_intra_precision_mean": unreported("mean intra-precision of EMA G", True, "ema_intra_precision"),
    "ema_intra_recall_mean": unreported("mean intra-recall of EMA G", True, "ema_intra_recall"),
    "ema_intra_diversity_mean": unreported("mean diversity ratio of EMA G", True, "ema_intra_diversity"),
    "conditional_accuracy": Metric("conditional accuracy", True, "conditional_accuracy", primary_eligible=False),
}
SECOND = "second_"  # key prefix: the score in the second feature space (evaluate.second_extractor)
# The scores measured again in the second space, for the last, best and EMA generators: eval.json and MLflow only.
SECOND_SPACE = ("fid", "kid_mean", "is_mean", "precision", "recall")
BEST, EMA = "best_", "ema_"  # key prefixes: the score of the best checkpoint, of the EMA of G's weights
for _prefix in ("", BEST, EMA):
    for _key in SECOND_SPACE:
        _m = METRICS[_prefix + _key] if _prefix + _key in METRICS else METRICS[_key]
        METRICS[f"{_prefix}{SECOND}{_key}"] = unreported(f"{_m.label} in the second space", _m.higher_is_better,
                                                         f"{_prefix}{SECOND}{_key}")

PRIMARY = tuple(key for key, m in METRICS.items() if m.primary_eligible)  # what `ablation.primary` may name
REPORTED = tuple(key for key, m in METRICS.items() if m.in_report)  # the report's columns, in their order


def scored_for(prefix: str) -> tuple[str, ...]:
    """The keys <k> with <prefix><k> in the table (prefix BEST or EMA), in its order: what evaluate takes from the
    best checkpoint's or the EMA generator's evaluation. ema_fid_delta is none of them: "fid_delta" is no key."""
    return tuple(k.removeprefix(prefix) for k in METRICS if k.startswith(prefix) and k.removeprefix(prefix) in METRICS)


def in_second_space(key: str) -> str | None:
    """The key of `key` measured in the second feature space (ema_fid -> ema_second_fid), or None where the second
    space does not measure it."""
    prefix = next((p for p in (BEST, EMA) if key.startswith(p) and key.removeprefix(p) in METRICS), "")
    second = f"{prefix}{SECOND}{key.removeprefix(prefix)}"
    return second if second in METRICS else None


def label(key: str) -> str:
    return METRICS[key].label if key in METRICS else key


def short(key: str) -> str:
    return METRICS[key].short if key in METRICS else key
