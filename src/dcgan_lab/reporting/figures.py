"""The report's figures: a metric per variant with its interval and every seed, every run's losses, and
the sample grids (a row per variant, a column per seed)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.files import atomic_write_bytes


def _save(fig, path: Path, dpi: int) -> None:
    """The figure as a PNG, written whole or not at all (a full disk is one line naming the file)."""
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=dpi)
    atomic_write_bytes(path, png.getvalue())


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_metric(summary: pd.DataFrame, table: pd.DataFrame, metric: str, path: Path, label: str | None = None) -> None:
    """Bars: the mean over seeds with its 95% interval; dots: each seed's value. `label` names the metric."""
    label = label or metric
    plt = _pyplot()
    rows = summary[summary.metric == metric]
    variants = list(rows["variant"])
    fig, ax = plt.subplots(figsize=(1.3 * len(variants) + 2, 3))
    err = np.nan_to_num(rows["ci95"].to_numpy(), nan=0.0)
    ax.bar(variants, rows["mean"], yerr=err, capsize=6, color="#4c72b0", alpha=0.8)
    for i, variant in enumerate(variants):
        values = table.loc[table.variant == variant, metric].astype(float)
        ax.scatter(np.full(len(values), i) + np.linspace(-0.15, 0.15, len(values)), values, color="black", s=12,
                   zorder=3, label="one seed" if i == 0 else None)
    ax.set_ylabel(f"{label} (mean, 95% CI)")
    ax.set_title(f"{label} per variant")
    ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path, 120)
    plt.close(fig)


def plot_losses(losses: dict[str, pd.DataFrame], path: Path, window: int = 25) -> None:
    """All runs' D and G losses on one figure (rolling mean over `window` steps)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharex=True)
    for name, df in losses.items():
        for ax, col in zip(axes, ("loss_d", "loss_g")):
            ax.plot(df["step"], df[col].rolling(window, min_periods=1).mean(), label=name, linewidth=1)
    for ax, title in zip(axes, ("D loss", "G loss")):
        ax.set_title(f"{title} (rolling mean of {window} steps)")
        ax.set_xlabel("step")
    axes[1].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    _save(fig, path, 120)
    plt.close(fig)


def side_by_side(grids: dict[tuple[str, int], Path], path: Path) -> None:
    """Sample grids in a table: one row per variant, one column per seed, captioned."""
    from PIL import Image

    plt = _pyplot()
    variants = list(dict.fromkeys(v for v, _ in grids))
    seeds = list(dict.fromkeys(s for _, s in grids))
    fig, axes = plt.subplots(len(variants), len(seeds), figsize=(2.6 * len(seeds), 2.8 * len(variants)),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for (variant, seed), grid in grids.items():
        ax = axes[variants.index(variant)][seeds.index(seed)]
        ax.imshow(Image.open(grid), cmap="gray")
        ax.set_title(f"{variant} seed {seed}", fontsize=9)
    fig.tight_layout()
    _save(fig, path, 100)
    plt.close(fig)
