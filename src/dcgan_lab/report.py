"""The ablation report: per-variant means with 95% confidence intervals over seeds, Welch t-tests
between variants (scipy), and figures. Input is the evaluate stage's results, nothing recomputed."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

# Metric -> True when higher is better (for the arrows in the report, never for the numbers).
METRICS = {
    "fid": False,
    "kid_mean": False,
    "is_mean": True,
    "precision": True,
    "recall": True,
    "classes_covered": True,
    "class_kl_real": False,
    "best_fid": False,
    "ema_fid": False,
    "ema_fid_delta": False,
}
LABELS = {"fid": "FID", "kid_mean": "KID", "is_mean": "IS", "classes_covered": "classes covered",
          "class_kl_real": "KL(classes ‖ real)", "best_fid": "FID of best checkpoint", "ema_fid": "FID of EMA G",
          "ema_fid_delta": "EMA − raw FID"}


def ablation_table(results: dict[str, dict[str, dict]]) -> pd.DataFrame:
    """{variant: {"seed<k>": {metric: value}}} -> one row per (variant, seed)."""
    rows = []
    for variant, by_seed in results.items():
        for seed_key, r in by_seed.items():
            rows.append({"variant": variant, "seed": int(seed_key.removeprefix("seed")),
                         **{k: v for k, v in r.items() if not isinstance(v, (list, dict))}})
    return pd.DataFrame(rows)


def summarize(table: pd.DataFrame, metrics=tuple(METRICS)) -> pd.DataFrame:
    """Mean and 95% t-interval half-width per variant and metric (NaN interval for a single seed)."""
    rows = []
    for variant, group in table.groupby("variant", sort=False):
        for metric in metrics:
            if metric not in group:
                continue
            values = group[metric].astype(float).to_numpy()
            n = len(values)
            half = float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
            rows.append({"variant": variant, "metric": metric, "n_seeds": n, "mean": float(values.mean()),
                         "ci95": half})
    return pd.DataFrame(rows)


def pairwise_tests(table: pd.DataFrame, metrics=("fid", "kid_mean", "is_mean")) -> pd.DataFrame:
    """Welch's t-test (unequal variances) for every pair of variants; p is NaN with fewer than 2 seeds each."""
    rows = []
    variants = list(dict.fromkeys(table["variant"]))
    for a, b in itertools.combinations(variants, 2):
        for metric in metrics:
            if metric not in table:
                continue
            x = table.loc[table.variant == a, metric].astype(float).to_numpy()
            y = table.loc[table.variant == b, metric].astype(float).to_numpy()
            p = float(stats.ttest_ind(x, y, equal_var=False).pvalue) if min(len(x), len(y)) >= 2 else math.nan
            rows.append({"a": a, "b": b, "metric": metric, "mean_a": x.mean(), "mean_b": y.mean(),
                         "diff": y.mean() - x.mean(), "p_welch": p})
    return pd.DataFrame(rows)


def _fmt(mean: float, half: float) -> str:
    return f"{mean:.4g}" if math.isnan(half) else f"{mean:.4g} ± {half:.2g}"


def render_markdown(summary: pd.DataFrame, tests: pd.DataFrame, protocol: dict, reference: dict | None = None) -> str:
    """A report a person can read on its own: what was measured, how, and what differs."""
    lines = ["# Ablation report", ""]
    lines += [
        "How it was measured: " + ", ".join(f"{k} = {v}" for k, v in protocol.items()) + ".",
        "",
    ]
    if reference:
        lines += [
            f"Real data under the same extractor, for scale: FID between two halves of the {reference['real_split']} "
            f"split ({reference['n_per_half']} images each) = {reference['fid_half_vs_half']:.4g}, KID = "
            f"{reference['kid_half_vs_half']:.4g}, IS of real images = {reference['is_real']:.4g}.",
            "",
        ]
    lines += [
        "Mean over seeds ± half-width of the 95% t-interval (no interval with one seed).",
        "",
    ]
    wide = summary.assign(cell=[_fmt(m, h) for m, h in zip(summary["mean"], summary["ci95"])])
    wide = wide.pivot(index="variant", columns="metric", values="cell")
    order = list(dict.fromkeys(summary["variant"]))
    cols = [m for m in METRICS if m in wide.columns]
    wide = wide.loc[order, cols]
    n_seeds = summary.groupby("variant", sort=False)["n_seeds"].max()
    arrows = {m: "↑" if up else "↓" for m, up in METRICS.items()}
    lines.append("| variant | seeds | " + " | ".join(f"{LABELS.get(c, c)} {arrows[c]}" for c in cols) + " |")
    lines.append("| --- | --- | " + " | ".join("---" for _ in cols) + " |")
    for v in order:
        lines.append(f"| {v} | {n_seeds[v]} | " + " | ".join(wide.loc[v, c] for c in cols) + " |")
    lines += ["", "## Pairwise comparisons (Welch's t-test, two-sided)", ""]
    if tests.empty or tests["p_welch"].isna().all():
        lines.append("Not enough seeds for a test (each variant needs at least 2: set `ablation.seeds`, "
                     "e.g. `dvc exp run -S 'ablation.seeds=[0,1,2]'`). Differences below are single-run numbers.")
        lines.append("")
    lines.append("| a | b | metric | mean a | mean b | b − a | p |")
    lines.append("| --- | --- | --- | --- | --- | --- | --- |")
    for r in tests.itertuples():
        p = "n/a" if math.isnan(r.p_welch) else f"{r.p_welch:.3g}"
        lines.append(f"| {r.a} | {r.b} | {LABELS.get(r.metric, r.metric)} | {r.mean_a:.4g} | {r.mean_b:.4g} | {r.diff:+.4g} | {p} |")
    lines.append("")
    return "\n".join(lines)


def plot_metric(summary: pd.DataFrame, metric: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary[summary.metric == metric]
    fig, ax = plt.subplots(figsize=(5, 3))
    err = np.nan_to_num(rows["ci95"].to_numpy(), nan=0.0)
    ax.bar(rows["variant"], rows["mean"], yerr=err, capsize=6, color="#4c72b0")
    ax.set_ylabel(f"{metric} (mean, 95% CI)")
    ax.set_title(f"{metric} per variant")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_losses(losses: dict[str, pd.DataFrame], path: Path, window: int = 25) -> None:
    """All runs' D and G losses on one figure (rolling mean over `window` steps)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharex=True)
    for name, df in losses.items():
        for ax, col in zip(axes, ("loss_d", "loss_g")):
            ax.plot(df["step"], df[col].rolling(window, min_periods=1).mean(), label=name, linewidth=1)
    for ax, title in zip(axes, ("D loss", "G loss")):
        ax.set_title(f"{title} (rolling mean of {window} steps)")
        ax.set_xlabel("step")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def side_by_side(grids: dict[str, Path], path: Path) -> None:
    """Sample grids next to each other, captioned with their names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    fig, axes = plt.subplots(1, len(grids), figsize=(3.2 * len(grids), 3.5), squeeze=False)
    for ax, (name, grid) in zip(axes[0], grids.items()):
        ax.imshow(Image.open(grid), cmap="gray")
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def summary_metrics(summary: pd.DataFrame) -> dict[str, dict[str, float]]:
    """{variant: {"<metric>_mean": .., "<metric>_ci95": ..}} for DVC metrics (NaN intervals left out)."""
    short = {"kid_mean": "kid", "is_mean": "is"}  # "is_mean_mean" would read badly in `dvc exp show`
    out: dict[str, dict[str, float]] = {}
    for r in summary.itertuples():
        entry = out.setdefault(r.variant, {"n_seeds": int(r.n_seeds)})
        name = short.get(r.metric, r.metric)
        entry[f"{name}_mean"] = round(float(r.mean), 6)
        if not math.isnan(r.ci95):
            entry[f"{name}_ci95"] = round(float(r.ci95), 6)
    return out


def log_report(summary: dict, member_runs: list[Path], artifacts: list[Path]) -> str:
    """One MLflow run named "ablation" with the report and figures; its members get a tag pointing to it."""
    import json

    from .tracking import RunLogger

    logger = RunLogger.start("ablation", None, {}, run_name="ablation")
    logger.log_metrics([{f"{v}.{k}": x for v, entry in summary.items() for k, x in entry.items()}], [0])
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
