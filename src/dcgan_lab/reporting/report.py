"""The ablation report: verdicts first, then each variant's mean, 95% interval and seed-to-seed noise, the
per-class FID, then every comparison with its tests (stats.py). Input is the evaluate stage's results, nothing
recomputed.

The first variant of `ablation.variants` is the control: every variant is compared with it and with each
other, paired by seed. A verdict names a winner only when the Holm-adjusted p is below 0.05.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from ..core import paths
from ..core.config import Params
from ..core.errors import DataError, reason
from ..core.files import atomic_write_text, ensure_writable
from ..evaluation.results import results_table
from . import stats
from .figures import plot_losses, plot_metric, side_by_side

# Metric -> True when higher is better (for arrows and for which side a verdict calls better).
METRICS = {
    "fid": False,
    "intra_fid_mean": False,
    "kid_mean": False,
    "is_mean": True,
    "precision": True,
    "recall": True,
    "classes_covered": True,
    "class_kl_real": False,
    "best_fid": False,
    "ema_fid": False,
    "ema_fid_delta": False,
    "conditional_accuracy": True,
}
LABELS = {"fid": "FID", "kid_mean": "KID", "is_mean": "IS", "classes_covered": "classes covered",
          "class_kl_real": "KL(classes ‖ real)", "best_fid": "FID of best checkpoint", "ema_fid": "FID of EMA G",
          "ema_fid_delta": "EMA − raw FID", "intra_fid_mean": "mean intra-FID",
          "conditional_accuracy": "conditional accuracy"}
VERDICT_METRIC = "fid"  # the headline: one verdict line per comparison opens the report
TESTED = ("fid", "kid_mean", "is_mean", "precision", "recall", "intra_fid_mean")  # every comparison, where present
# Names in ablation.json: "is_mean_mean" would read badly in `dvc exp show`.
SHORT = {"kid_mean": "kid", "is_mean": "is", "intra_fid_mean": "intra_fid"}
ALPHA = 0.05


def summarize(table: pd.DataFrame, metrics=tuple(METRICS)) -> pd.DataFrame:
    """Per variant and metric: seeds, mean, seed-to-seed SD (the noise floor) and 95% t half-width."""
    return stats.noise_floor(table, [m for m in metrics if m in table])


def compare(table: pd.DataFrame, variants: list[str]) -> list[stats.Comparison]:
    """Each variant vs the control (the first), then each later variant vs each earlier one, on every
    tested metric; Holm-adjusted within each metric."""
    present = [v for v in variants if v in set(table["variant"])]
    return stats.compare_all(table, stats.pairs_for(present, present[0]), [m for m in TESTED if m in table])


def verdicts(comparisons: list[stats.Comparison], metric: str = VERDICT_METRIC) -> list[str]:
    """One plain-words line per comparison on `metric`."""
    return [stats.verdict(c, not METRICS[c.metric], LABELS.get(c.metric, c.metric), ALPHA)
            for c in comparisons if c.metric == metric]


def outcome(c: stats.Comparison) -> str:
    """The verdict in a word or three: '<variant> better', 'not distinguishable' or 'n/a'."""
    if c.test == "n/a":
        return "n/a"
    if c.p_holm < ALPHA and c.diff != 0:
        return f"{c.variant if (c.diff < 0) != METRICS[c.metric] else c.other} better"
    return "not distinguishable"


def _fmt(mean: float, half: float) -> str:
    return f"{mean:.4g}" if math.isnan(half) else f"{mean:.4g} ± {half:.2g}"


def _variant_table(summary: pd.DataFrame, value) -> list[str]:
    """A markdown table, one row per variant and one column per metric, cells from value(row)."""
    cols = [m for m in METRICS if m in set(summary["metric"])]
    order = list(dict.fromkeys(summary["variant"]))
    cells = {(r.variant, r.metric): value(r) for r in summary.itertuples() if r.n_seeds}  # else "–"
    n_seeds = summary.groupby("variant", sort=False)["n_seeds"].max()
    arrows = {m: "↑" if up else "↓" for m, up in METRICS.items()}
    lines = ["| variant | seeds | " + " | ".join(f"{LABELS.get(c, c)} {arrows[c]}" for c in cols) + " |",
             "| --- | --- | " + " | ".join("---" for _ in cols) + " |"]
    lines += [f"| {v} | {n_seeds[v]} | " + " | ".join(cells.get((v, c), "–") for c in cols) + " |" for v in order]
    return lines


PER_CLASS_TEXT = (
    "Intra-class FID (as StudioGAN reports it): the FID between one class's samples and the real images of that "
    "class, in the feature space of FID. A conditional variant's samples are grouped by the label they were "
    "generated for (requested label; G is asked for the real split's class shares); an unconditional variant's by "
    "the class the domain classifier predicts for them, so its intra-FID also carries that classifier's errors. "
    "Each cell is the mean over seeds of that class's FID; – where no seed had at least 2 samples of the class on "
    "both sides. Mean: the mean over the scored classes, averaged over seeds; scored: classes with a value.")


def per_class_section(results: dict, variants: list[str]) -> list[str]:
    """The "Per-class FID" section: a row per variant, a column per class; none for an eval.json without
    per-class FIDs (written before them)."""
    runs = {v: [r for r in results[v].values() if "intra_fid" in r] for v in variants}
    runs = {v: rs for v, rs in runs.items() if rs}
    if not runs:
        return []
    n_classes = max(len(r["intra_fid"]) for rs in runs.values() for r in rs)

    def mean(values) -> str:
        values = [x for x in values if x is not None]
        return _fmt(sum(values) / len(values), math.nan) if values else "–"

    classes = range(n_classes)
    lines = ["## Per-class FID", "", PER_CLASS_TEXT, "",
             "| variant | grouped by | scored | mean ↓ | " + " | ".join(f"class {k}" for k in classes) + " |",
             "| --- | --- | --- | --- | " + " | ".join("---" for _ in classes) + " |"]
    for v, rs in runs.items():
        grouping = ", ".join(sorted({r["intra_fid_grouping"] for r in rs}))
        low, high = min(r["intra_fid_classes"] for r in rs), max(r["intra_fid_classes"] for r in rs)
        scored = str(low) if low == high else f"{low}–{high}"  # the seeds may score different classes
        cells = [mean(r["intra_fid"][k] for r in rs if k < len(r["intra_fid"])) for k in classes]
        lines.append(f"| {v} | {grouping} | {scored} | {mean(r['intra_fid_mean'] for r in rs)} | "
                     + " | ".join(cells) + " |")
    return lines + [""]


def render_markdown(summary: pd.DataFrame, comparisons: list[stats.Comparison], protocol: dict,
                    reference: dict | None = None, per_class: list[str] = ()) -> str:
    """A report a person can read on its own: the answer, how it was measured, the numbers behind it.
    `per_class`: the Per-class FID section (per_class_section), after the per-variant tables."""
    control = comparisons[0].other if comparisons else summary["variant"].iloc[0]
    seeds = int(summary["n_seeds"].max())
    lines = ["# Ablation report", "",
             f"## Verdicts ({LABELS[VERDICT_METRIC]}, control: {control}, {seeds} seed{'s' * (seeds != 1)} per variant)",
             "",
             f"Paired by seed (runs with the same seed share weight init, data order and noise): paired t-test on "
             f"the per-seed differences, p-values Holm-adjusted across the {LABELS[VERDICT_METRIC]} comparisons; a "
             f"winner is named only at adjusted p < {ALPHA}. Difference = first − second, with its 95% interval.",
             ""]
    lines += [f"- {line}" for line in verdicts(comparisons)] + [""]
    for metric in ("kid_mean", "is_mean"):
        if any(c.metric == metric for c in comparisons):
            lines += [f"{LABELS[metric]}:", ""] + [f"- {line}" for line in verdicts(comparisons, metric)] + [""]
    lines += ["## How it was measured", "", ", ".join(f"{k} = {v}" for k, v in protocol.items()) + ".", ""]
    if reference:
        lines += [
            f"Real data under the same extractor, for scale: FID between two halves of the {reference['real_split']} "
            f"split ({reference['n_per_half']} images each) = {reference['fid_half_vs_half']:.4g}, KID = "
            f"{reference['kid_half_vs_half']:.4g}, IS of real images = {reference['is_real']:.4g}.", ""]
    lines += ["## Per variant", "", "Mean over seeds ± half-width of the 95% t-interval (no interval with one seed).",
              ""]
    lines += _variant_table(summary, lambda r: _fmt(r.mean, r.ci95))
    lines += ["", "Seed-to-seed standard deviation (the noise floor: differences below it need more seeds):", ""]
    lines += _variant_table(summary, lambda r: stats.fmt_num(r.sd, 2))
    lines += ["", *per_class]
    lines += ["## Every comparison", "",
              "Paired t on per-seed differences where both variants have the same seeds (Welch's t otherwise, and "
              "beside it as a check); Wilcoxon signed-rank with 5 or more seeds; Holm across each metric's "
              "comparisons; seeds for 80% power: a normal-approximation estimate of the seeds that would resolve "
              "a difference of the observed size.", ""]
    lines.append(stats.markdown_table(comparisons, LABELS))
    return "\n".join(lines)


def summary_json(summary: pd.DataFrame, comparisons: list[stats.Comparison]) -> dict:
    """metrics/ablation.json: {variant: {n_seeds, <metric>_mean, _ci95, _sd}} and, under "verdicts",
    {"<a>_vs_<b>": {<metric>: outcome, <metric>_diff, _ci_low, _ci_high, _p, _p_holm, _test, _seeds_needed}},
    finite numbers only (`dvc exp show` shows them as columns)."""
    out: dict[str, dict] = {}
    for r in summary.itertuples():
        entry = out.setdefault(r.variant, {"n_seeds": int(r.n_seeds)})
        name = SHORT.get(r.metric, r.metric)
        for key, value in (("mean", r.mean), ("ci95", r.ci95), ("sd", r.sd)):
            if math.isfinite(value):
                entry[f"{name}_{key}"] = round(float(value), 6)
    verdict_entries: dict[str, dict] = {}
    for c in comparisons:
        entry = verdict_entries.setdefault(f"{c.variant}_vs_{c.other}", {})
        name = SHORT.get(c.metric, c.metric)
        entry[name] = outcome(c)
        for key, value in (("diff", c.diff), ("ci_low", c.ci_low), ("ci_high", c.ci_high), ("p", c.p),
                           ("p_holm", c.p_holm), ("seeds_needed", c.seeds_needed)):
            if value is not None and math.isfinite(value):
                entry[f"{name}_{key}"] = round(float(value), 6) if key != "seeds_needed" else int(value)
        entry[f"{name}_test"] = c.test
    out["verdicts"] = verdict_entries
    return out


def log_report(summary: dict, lines: list[str], member_runs: list[Path], artifacts: list[Path],
               tags: dict[str, str]) -> str:
    """One MLflow run named "ablation": per-variant means as metrics, the verdicts as tags and as a text
    artifact, the report and figures as artifacts; its members get a tag pointing to it."""
    from ..tracking.runs import RunLogger

    logger = RunLogger.start("ablation", None, {}, tags, run_name="ablation")
    numbers = {f"{v}.{k}": x for v, entry in summary.items() if v != "verdicts"
               for k, x in entry.items() if isinstance(x, (int, float))}
    logger.log_metrics([numbers], [0])
    logger.set_tags({f"verdict.{name}": entry.get(SHORT.get(VERDICT_METRIC, VERDICT_METRIC), "n/a")
                     for name, entry in summary["verdicts"].items()})
    logger.client.log_text(logger.run_id, "\n".join(lines) + "\n", "report/verdicts.txt")
    for path in artifacts:
        logger.log_artifact(path, "report")
    members = []
    for run_file in member_runs:
        member = RunLogger(json.loads(Path(run_file).read_text())["run_id"], logger.client.tracking_uri)
        member.set_tags({"ablation_run_id": logger.run_id})
        members.append(member.run_id)
    logger.set_tags({"ablation_members": ",".join(members)})
    logger.finish()
    return logger.run_id


def protocol_of(results: dict) -> dict:
    """How the scores were measured, from the first result (every result of a run shares it)."""
    first = next(iter(next(iter(results.values())).values()))
    protocol = {k: first[k] for k in ("extractor", "fid_features", "n_samples", "n_real", "real_split", "seed",
                                      "kid_subset_size")}
    protocol["sample seed"] = protocol.pop("seed")
    if "extractor_test_accuracy" in first:
        protocol["extractor test accuracy"] = first["extractor_test_accuracy"]
    return protocol


def _read(path: Path, read, stage: str):
    """An input of the report, read by `read`; missing or unreadable is one line saying which stage makes it."""
    try:
        return read(path)
    except FileNotFoundError:
        raise DataError(f"{path}: not found; run `dvc repro {stage}` first") from None
    except (OSError, ValueError, KeyError) as exc:  # pandas' and json's parse errors are ValueErrors
        raise DataError(f"{path}: unreadable ({reason(exc)}); rerun `dvc repro {stage}`") from exc


def _read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def write_report(params: Params, results_dir: paths.EvalPaths, train_metrics: Path, models: Path,
                 out: paths.ReportPaths, tags: dict[str, str]) -> str:
    """The report stage: ablation.{csv,json,md}, the figures, and an MLflow run named "ablation".
    Every input is read before the first output is written. Returns the markdown report."""
    results = _read(results_dir.results, _read_json, "evaluate")
    variants = [v for v in params.ablation.variants if v in results]
    runs = [(v, s) for v in variants for s in params.ablation.seeds]
    losses = {f"{v}-seed{s}": _read(paths.losses_file(train_metrics, v, s), pd.read_csv, f"train@{v}-{s}")
              for v, s in runs}
    grids = {(v, s): paths.model_dir(models, v, s).samples for v, s in runs}
    run_files = [paths.model_dir(models, v, s).mlflow_run for v, s in runs]
    for (v, s), path in [*grids.items(), *zip(runs, run_files)]:
        _read(path, lambda p: p.stat(), f"train@{v}-{s}")  # there, before anything is written
    ensure_writable(out.metrics, out.plots)
    table = results_table({v: results[v] for v in variants})
    summary, comparisons = summarize(table), compare(table, variants)
    reference = _read(results_dir.reference, _read_json, "evaluate") if results_dir.reference.exists() else None
    markdown = render_markdown(summary, comparisons, protocol_of(results), reference,
                               per_class_section(results, variants))
    summary_out = summary_json(summary, comparisons)
    atomic_write_text(out.table, table.to_csv(index=False, float_format="%.6g"))
    atomic_write_text(out.summary, json.dumps(summary_out, indent=2) + "\n")
    atomic_write_text(out.markdown, markdown)

    figures = out.figures
    plot_metric(summary, table, "fid", figures["fid"])
    plot_losses(losses, figures["losses"])
    side_by_side(grids, figures["samples"])
    log_report(summary_out, verdicts(comparisons), run_files, [out.markdown, out.table, *figures.values()], tags)
    return markdown
