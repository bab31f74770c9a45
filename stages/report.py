"""Stage report: the ablation across seeds -> metrics/ablation.{csv,json,md}, plots/*.png, an MLflow run."""

import argparse
import json
from pathlib import Path

import pandas as pd

from dcgan_lab.cli import run_stage
from dcgan_lab.paths import run_paths
from dcgan_lab.report import (
    ablation_table, log_report, pairwise_tests, plot_losses, plot_metric, render_markdown, side_by_side, summarize,
    summary_metrics,
)


def main(params, args):
    results = json.loads(Path(args.eval).read_text())
    table = ablation_table(results)
    summary, tests = summarize(table), pairwise_tests(table)
    first = next(iter(next(iter(results.values())).values()))
    protocol = {k: first[k] for k in ("extractor", "fid_features", "n_samples", "n_real", "real_split", "seed",
                                      "kid_subset_size")}
    protocol["sample seed"] = protocol.pop("seed")
    if Path(args.classifier_metrics).exists():
        protocol["extractor test accuracy"] = json.loads(Path(args.classifier_metrics).read_text())["test_accuracy"]

    out = Path("metrics")
    table.to_csv(out / "ablation.csv", index=False, float_format="%.6g")
    summary_json = summary_metrics(summary)
    (out / "ablation.json").write_text(json.dumps(summary_json, indent=2) + "\n")
    reference = json.loads(Path(args.reference).read_text()) if Path(args.reference).exists() else None
    (out / "ablation.md").write_text(render_markdown(summary, tests, protocol, reference))

    plots = Path(args.plots)
    plots.mkdir(parents=True, exist_ok=True)
    runs = [(v, s) for v in params.variants for s in params.ablation.seeds]
    plot_metric(summary, "fid", plots / "fid.png")
    plot_losses({f"{v}-seed{s}": pd.read_csv(run_paths(v, s).losses) for v, s in runs}, plots / "losses.png")
    side_by_side({f"{v} seed {s}": run_paths(v, s).samples for v, s in runs}, plots / "samples.png")

    artifacts = [out / "ablation.md", out / "ablation.csv", plots / "fid.png", plots / "losses.png",
                 plots / "samples.png"]
    log_report(summary_json, [run_paths(v, s).mlflow_run for v, s in runs], artifacts)
    print((out / "ablation.md").read_text())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--eval", default="metrics/eval.json")
    parser.add_argument("--classifier-metrics", default="metrics/classifier.json")
    parser.add_argument("--plots", default="plots")
    parser.add_argument("--reference", default="metrics/reference.json")
    run_stage(main, parser)
