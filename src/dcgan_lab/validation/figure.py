"""plots/extractor.png: FID over its floor against the level of each disturbance, the picture of Heusel et al.'s
(2017) Fig. 1 for each feature space in metrics/extractor.json. Drawn as reporting/figures.py draws (matplotlib,
Agg), into bytes, so that the stage writes it whole beside the JSON."""

from __future__ import annotations

import io


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def render(result: dict) -> bytes:
    """A PNG of `result` (metrics/extractor.json's content): one panel per extractor, one line per disturbance
    against the level index (0 = undisturbed), on one log axis for all panels: FID over the extractor's own
    real-vs-real floor (undisturbed vs real, the dashed 1), so that the spaces' sensitivities compare; FID itself
    where the floor is 0."""
    plt = _pyplot()
    extractors = result["extractors"]
    fig, axes = plt.subplots(1, len(extractors), figsize=(6.5 * len(extractors), 4.2), squeeze=False, sharey=True)
    for ax, (name, r) in zip(axes[0], extractors.items()):
        ratio = r["floor_fid"] > 0  # else a ratio has no meaning: FID itself
        for d_name, d in r["disturbances"].items():
            y = [f / r["floor_fid"] for f in d["fid"]] if ratio else d["fid"]
            ax.plot(range(len(y)), y, marker="o", markersize=3, linewidth=1.2,
                    label=f"{d_name} (rho {_g(d['spearman_fid'])})")
        if ratio:
            ax.axhline(1.0, linestyle="--", color="grey", linewidth=1,
                       label=f"floor: undisturbed, FID {r['floor_fid']:.3g}")
        ax.set_yscale("log")
        ax.set_xticks(range(max(len(d["fid"]) for d in r["disturbances"].values())))
        ax.set_xlabel("level (0 = undisturbed)")
        ax.set_ylabel("FID / its floor (log scale)" if ratio else "FID (log scale)")
        verdict = "all checks pass" if r["ok"] else f"failed: {', '.join(r['failed_checks'])}"
        s = r["sensitivity"]
        ax.set_title(f"{name}: sensitivity {'undefined' if s is None else f'{s:.3g}x'} floor; {verdict}", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=120)
    plt.close(fig)
    return png.getvalue()


def _g(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.2g}"
