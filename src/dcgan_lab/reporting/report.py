"""The ablation report: the mode-collapse alarm's line (alarms.py), the declared design, one confirmatory verdict
per comparison on its primary endpoint (verdicts.py), every other metric as exploratory description (stats.py),
then each variant's means, noise and per-class FID. Input is the evaluate stage's results, nothing recomputed.

The first variant of `ablation.variants` is the control: every variant is compared with it, and each later
variant with each earlier one, paired by seed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from ..core import paths
from ..core.config import AblationConfig, Params
from ..core.errors import ConfigError
from ..core.files import atomic_write_text, ensure_writable
from ..core.metrics import METRICS, PRIMARY, REPORTED, label, short
from ..evaluation.results import results_table, write_results
from . import robustness, sequential, stats, verdicts
from .alarms import collapse_line, extractor_lines
from .design import Design, wilcoxon_can_pass, wilcoxon_seeds
from .figures import plot_losses, plot_metric, side_by_side
from .inputs import protocol_of, read_input, read_json, read_results


class Study:
    """Everything the report says about one table of results: design, verdicts, exploratory comparisons."""

    def __init__(self, table: pd.DataFrame, ablation: AblationConfig, variants: list[str],
                 reference: dict | None = None):
        present = [v for v in variants if v in set(table["variant"])]
        if ablation.primary not in table:
            have = [k for k in PRIMARY if k in table]
            raise ConfigError(f"ablation.primary: {ablation.primary!r} is not among the evaluated scores (an EMA "
                              f"generator needs train.ema_decay > 0, a best one train.eval_every > 0); allowed "
                              f"here: {', '.join(have)}")
        metric = METRICS[ablation.primary]
        pairs = stats.pairs_for(present, present[0])
        design = Design(ablation.primary, metric.label, not metric.higher_is_better, ablation.margin, ablation.alpha,
                        looks=ablation.looks)
        self.design, self.verdicts, self.looks = sequential.primary_family(  # looks None: a fixed design
            table, pairs, design, ablation.seeds, metric.fid_inf)
        self.control, self.seeds, self.seed_sequence = present[0], sorted(set(table["seed"])), ablation.seed_sequence
        # every verdict re-decided in the second feature space (None: not scored there), a robustness check only
        self.second = robustness.second_space(table, pairs, self.design, self.verdicts, ablation.seeds, reference)
        self.table = table
        self.summary = stats.noise_floor(table, [m for m in REPORTED if m in table])
        self.exploratory = [stats.compare(table, v, o, m, not METRICS[m].higher_is_better)
                            for m in PRIMARY if m in table and m != design.primary for v, o in pairs]


def _fmt(mean: float, half: float) -> str:
    return f"{mean:.4g}" if math.isnan(half) else f"{mean:.4g} ± {half:.2g}"


def _variant_table(summary: pd.DataFrame, value) -> list[str]:
    """A markdown table, one row per variant and one column per metric, cells from value(row)."""
    cols = [m for m in METRICS if m in set(summary["metric"])]
    order = list(dict.fromkeys(summary["variant"]))
    cells = {(r.variant, r.metric): value(r) for r in summary.itertuples() if r.n_seeds}  # else "–"
    n_seeds = summary.groupby("variant", sort=False)["n_seeds"].max()
    arrow = {m: "↑" if info.higher_is_better else "↓" for m, info in METRICS.items()}
    lines = ["| variant | seeds | " + " | ".join(f"{label(c)} {arrow[c]}" for c in cols) + " |",
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
    """The "Per-class FID" section: a row per variant, a column per class."""
    runs = {v: list(results[v].values()) for v in variants}
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


def design_section(study: Study) -> list[str]:
    """What was declared before the runs, and how each verdict is read off its interval."""
    d, n = study.design, len(study.seeds)
    level, margin = stats.fmt_num(d.level, 2), f"{d.margin:g}"
    lines = ["## Design (declared in params.yaml `ablation:` before the runs)", "",
             f"- Primary endpoint: {d.label} (`{d.primary}`), {'lower' if d.lower_is_better else 'higher'} is better.",
             f"- Equivalence margin Δ = {margin} ({d.label} units)."]
    if study.looks is not None:  # the looks, their boundary, what each look reached decided
        lines += sequential.design_lines(d, study.control, study.looks, study.verdicts, study.seeds,
                                         study.seed_sequence)
        n = study.looks[-1].n if study.looks else 0
    else:
        lines += [f"- Family-wise alpha = {d.alpha:g} over the m = {d.m} comparisons below (each variant vs the "
                  f"control, {study.control}, and each later variant vs each earlier one); Bonferroni: each at "
                  f"{level}.", f"- Seeds: {', '.join(map(str, study.seeds))} ({n} per variant).", "",
                  f"Difference = first − second. \"A better\": the {stats.fmt_pct(1 - d.level)} simultaneous "
                  f"interval excludes 0. \"Equivalent within ±Δ\": TOST at {level}, its "
                  f"{stats.fmt_pct(1 - 2 * d.level)} interval inside ±Δ. Otherwise \"inconclusive\", with the seeds "
                  f"that would give 80% power to find a true difference of Δ under the same test. With probability "
                  f"at least {1 - d.alpha:.0%} every verdict below is right (tests/reporting/test_verdicts.py checks "
                  f"the error rates by simulation)."]
    if n and not wilcoxon_can_pass(n, d.level):
        lines += ["", f"Wilcoxon's signed-rank test is not shown: with {n} seeds its smallest possible p is "
                      f"{2.0 ** (1 - n):.2g}, above the per-comparison level {level}; it can pass from "
                      f"{wilcoxon_seeds(d.level)} seeds."]
    return lines + [""]


def verdict_table(study: Study) -> list[str]:
    d, fixed = study.design, study.looks is None  # sequential: repeated intervals, p against the boundary
    interval, p_head = ("simultaneous", "Bonferroni") if fixed else ("repeated", f"boundary {d.level:.2g}")
    lines = [f"| comparison | verdict | diff [{stats.fmt_pct(1 - d.level)} {interval}] | "
             f"TOST [{stats.fmt_pct(1 - 2 * d.tost_level)}] | p ({p_head}) | seeds favouring | seeds for 80% power | "
             f"FID∞ diff |", "|---|---|---|---|---|---|---|---|"]
    for v in study.verdicts:
        f, decided_at = v.favour, f" (look {v.look})" if v.look and v.verdict in ("better", "equivalent") else ""
        lines.append(" | ".join([
            f"| {v.variant} vs {v.other}", verdicts.outcome(v, d) + decided_at,
            stats.fmt_effect(v.diff, v.ci_low, v.ci_high),
            stats.fmt_interval(v.diff, v.tost_low, v.tost_high) if math.isfinite(v.tost_low) else "–",
            stats.fmt_p(v.p_bonferroni, d.alpha) if fixed else stats.fmt_p(v.p, d.level),
            f"{f.k}/{f.n} {f.side}" if f else "–",
            str(v.seeds_needed) if v.seeds_needed is not None else "–",
            stats.fmt_effect(v.fid_inf_diff, v.fid_inf_low, v.fid_inf_high) if v.fid_inf_diff is not None else "–"])
            + " |")
    return lines


FID_INF_TEXT = (
    "FID∞ (Chong & Forsyth 2020): FID is biased upwards by a term that shrinks as 1/N in the sample count N; "
    "FID∞ fits FID at several sample counts up to n_samples, linearly in 1/N, and reads it off at 1/N = 0.")


def render_markdown(study: Study, protocol: dict, reference: dict | None = None, per_class: list[str] = (),
                    alarm: str | None = None, validation: dict | None = None) -> str:
    """A report a person can read on its own: the design, the answer, how it was measured, the numbers behind
    it. `per_class`: the Per-class FID section (per_class_section), after the per-variant tables; `alarm`: the
    mode-collapse line (alarms.collapse_line), first; `validation`: metrics/extractor.json (a flag first if a check
    failed, a line each under "How it was measured")."""
    flag, checked = extractor_lines(validation)
    lines = ["# Ablation report", "", *([alarm, ""] if alarm else []), *([flag, ""] if flag else []),
             *design_section(study),
             f"## Verdicts ({study.design.label})", ""]
    marks = study.second.marks if study.second else [None] * len(study.verdicts)
    lines += [f"- {v.sentence}" + (f" — **{m}**" if m else "") for v, m in zip(study.verdicts, marks)] or [
        "- none: the study has one variant"]
    lines += ["", *verdict_table(study), "",
              *robustness.section(study.second, study.verdicts, study.design, study.table, study.control),
              "## Exploratory comparisons (no verdicts)", "",
              stats.EXPLORATORY_TEXT, ""]
    lines += [*stats.exploratory_table(study.exploratory, label), "", "## How it was measured", "",
              ", ".join(f"{k} = {v}" for k, v in protocol.items()) + ".", ""]
    lines += [line for c in checked for line in (c, "")]
    if any(k.endswith("fid_inf") for k in set(study.summary["metric"])):
        lines += [FID_INF_TEXT, ""]
    if reference:
        lines += [
            f"Real data under the same extractor, for scale: FID between two halves of the {reference['real_split']} "
            f"split ({reference['n_per_half']} images each) = {reference['fid_half_vs_half']:.4g}, KID = "
            f"{reference['kid_half_vs_half']:.4g}, IS of real images = {reference['is_real']:.4g}.", ""]
        if "second" in reference:
            r2 = reference["second"]
            lines += [f"In the second feature space ({r2['extractor']}, test accuracy {r2['test_accuracy']}): FID "
                      f"between the halves = {r2['fid_half_vs_half']:.4g}, KID = {r2['kid_half_vs_half']:.4g}, IS of "
                      f"real images = {r2['is_real']:.4g}.", ""]
    lines += ["## Per variant", "", "Mean over seeds ± half-width of the 95% t-interval (no interval with one seed).",
              ""]
    lines += _variant_table(study.summary, lambda r: _fmt(r.mean, r.ci95))
    lines += ["", "Seed-to-seed standard deviation (the noise floor: differences below it need more seeds):", ""]
    lines += _variant_table(study.summary, lambda r: stats.fmt_num(r.sd, 2))
    return "\n".join([*lines, "", *per_class]).rstrip("\n") + "\n"


def summary_json(study: Study) -> dict:
    """metrics/ablation.json: {variant: {n_seeds, <metric>_mean, _ci95, _sd}}; "design"; "verdicts":
    {"<a>_vs_<b>": every field of the primary verdict, its sentence included}; "exploratory":
    {"<a>_vs_<b>": {<metric>: {diff, ci_low, ci_high, test, favour, sentence}}}. `dvc exp show` shows them."""
    out: dict[str, dict] = {}
    for r in study.summary.itertuples():
        entry = out.setdefault(r.variant, {"n_seeds": int(r.n_seeds)})
        for key, value in (("mean", r.mean), ("ci95", r.ci95), ("sd", r.sd)):
            if math.isfinite(value):
                entry[f"{short(r.metric)}_{key}"] = round(float(value), 6)
    d = study.design
    out["design"] = dict(primary=d.primary, margin=d.margin, alpha=d.alpha, comparisons=d.m,
                         level=round(d.level, 6), correction="Bonferroni", control=study.control,
                         seeds=list(map(int, study.seeds)))
    if study.looks is not None:  # the looks and their boundary; per look reached, what it decided and left open
        out["design"].update(sequential.design_json(d))
        out["looks"] = {f"look_{k}": look.to_dict() for k, look in enumerate(study.looks, start=1)}
    out["verdicts"] = {f"{v.variant}_vs_{v.other}": {**stats.json_ready(v.to_dict(), digits=6),
                                                     "outcome": verdicts.outcome(v, d),
                                                     **robustness.verdict_entry(study.second, i)}
                       for i, v in enumerate(study.verdicts)}
    out.update(robustness.summary(study.second))
    exploratory: dict[str, dict] = {}
    for c in study.exploratory:
        entry = {k: x for k, x in c.to_dict().items() if k in ("diff", "ci_low", "ci_high", "test", "favour")}
        entry["sentence"] = stats.exploratory_line(c, label(c.metric))
        exploratory.setdefault(f"{c.variant}_vs_{c.other}", {})[short(c.metric)] = stats.json_ready(entry, digits=6)
    out["exploratory"] = exploratory
    return out


def report_text(summary: dict) -> list[str]:
    """The stored sentences: the design in one line, then one verdict per comparison."""
    d = summary["design"]
    head = (f"primary {d['primary']}, margin {d['margin']:g}, family-wise alpha {d['alpha']:g} over {d['comparisons']} "
            f"comparisons (Bonferroni), seeds {d['seeds']}")
    if "looks" in d:
        head += f"; looks at {d['looks']} seeds, every look at the boundary {d['boundary']['better']:.2g}"
    return [head, *(v["sentence"] + (f" — {v['second_space']['mark']}" if "second_space" in v else "")
                    for v in summary["verdicts"].values())]


def log_report(summary: dict, member_runs: list[Path], artifacts: list[Path], tags: dict[str, str]) -> str:
    """One MLflow run named "ablation": per-variant means as metrics (and the primary's 95% t-interval as
    `<variant>.<primary>_ci_low`, `_ci_high`), each verdict as a tag and the stored sentences as a text artifact,
    the report and figures as artifacts; its members (tagged `variant` and `seed` by train) get a tag pointing to
    it and the `study` tag of `tags` (provenance.study_id): what the MLflow UI's "Group by" groups them on."""
    from ..tracking.runs import RunLogger

    logger = RunLogger.start("ablation", None, {}, tags, run_name="ablation")
    variants = {v: entry for v, entry in summary.items()
                if v not in ("design", "looks", "verdicts", "exploratory", "second_space")}
    numbers = {f"{v}.{k}": x for v, entry in variants.items() for k, x in entry.items() if isinstance(x, (int, float))}
    primary = short(summary["design"]["primary"])
    for v, entry in variants.items():
        if f"{primary}_ci95" in entry:  # one seed: a mean, no interval
            mean, half = entry[f"{primary}_mean"], entry[f"{primary}_ci95"]
            numbers.update({f"{v}.{primary}_ci_low": mean - half, f"{v}.{primary}_ci_high": mean + half})
    logger.log_metrics([numbers], [0])
    design = {f"design.{k}": str(v) for k, v in summary["design"].items()}
    logger.set_tags({**design, **{f"verdict.{name}": entry["outcome"] for name, entry in summary["verdicts"].items()},
                     **{f"robustness.{name}": entry["second_space"]["mark"] for name, entry in summary["verdicts"].items()
                        if "second_space" in entry}})
    logger.client.log_text(logger.run_id, "\n".join(report_text(summary)) + "\n", "report/verdicts.txt")
    for path in artifacts:
        logger.log_artifact(path, "report")
    members = []
    for run_file in member_runs:
        member = RunLogger(json.loads(Path(run_file).read_text())["run_id"], logger.client.tracking_uri)
        member.set_tags({"ablation_run_id": logger.run_id, **({"study": tags["study"]} if "study" in tags else {})})
        members.append(member.run_id)
    logger.set_tags({"ablation_members": ",".join(members)})
    logger.finish()
    return logger.run_id


def write_report(params: Params, results_dir: paths.EvalPaths, train_metrics: Path, models: Path,
                 out: paths.ReportPaths, tags: dict[str, str], extractor: Path | None = None) -> str:
    """The report stage: eval.json and eval.csv (every run's scores in one place), ablation.{csv,json,md}, the
    figures, an MLflow run named "ablation", and with mlflow.register the lowest-FID generator registered;
    `extractor`: the validate_extractor stage's JSON, whose checks the report states (None: not stated).
    Every input is read before the first output is written. Returns the markdown report."""
    variants, seeds = list(params.ablation.variants), list(params.ablation.seeds)
    results = read_results(results_dir, variants, seeds)
    runs = [(v, s) for v in variants for s in seeds]
    losses = {f"{v}-seed{s}": read_input(paths.losses_file(train_metrics, v, s), pd.read_csv, f"train@{v}-{s}")
              for v, s in runs}
    grids = {(v, s): paths.model_dir(models, v, s).samples for v, s in runs}
    run_files = [paths.model_dir(models, v, s).mlflow_run for v, s in runs]
    for (v, s), path in [*grids.items(), *zip(runs, run_files)]:
        read_input(path, lambda p: p.stat(), f"train@{v}-{s}")  # there, before anything is written
    reference = read_input(results_dir.reference, read_json, "reference")
    validation = None if extractor is None else read_input(extractor, read_json, "validate_extractor")
    table = results_table(results)
    study = Study(table, params.ablation, variants, reference)  # a primary the results lack stops here, before any write
    ensure_writable(out.metrics, out.plots)
    markdown = render_markdown(study, protocol_of(results), reference, per_class_section(results, variants),
                               collapse_line(results, variants), validation)
    summary_out = summary_json(study)
    write_results(results, results_dir)
    atomic_write_text(out.table, table.to_csv(index=False, float_format="%.6g"))
    atomic_write_text(out.summary, json.dumps(summary_out, indent=2, allow_nan=False) + "\n")
    atomic_write_text(out.markdown, markdown)

    figures = out.figures
    plot_metric(study.summary, table, params.ablation.primary, figures["fid"], study.design.label)  # the primary
    plot_losses(losses, figures["losses"])
    side_by_side(grids, figures["samples"])
    log_report(summary_out, run_files, [out.markdown, out.table, *figures.values()], tags)
    if params.mlflow.register:
        from ..tracking.registry import register_lowest_fid  # torch and MLflow models: only when registering

        version = register_lowest_fid(results, models, params.mlflow.model_name, tags)
        print(f"registered the lowest-FID generator as {params.mlflow.model_name} version {version}")
    return markdown
