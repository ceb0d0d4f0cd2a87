"""Paper figures from the tracked runs, as PNG (for the report) and PDF (for the paper).

- STS Avg against batch size, one line per miner (mean ± std over seeds);
- alignment against uniformity (SimCSE's Figure 2 axes), one point per run.

Example::

    scores = fetch_scores(models)
    avg_vs_batch(group(scores), "results/default/figures/avg_vs_batch")
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402


def _save(fig, stem: str | Path) -> list[Path]:
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    for path in paths:
        fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return paths


def avg_vs_batch(grouped: pl.DataFrame, stem: str | Path) -> list[Path]:
    """STS Avg (mean ± std over seeds) against batch size, one line per miner."""
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    runs = grouped.filter(pl.col("bs").is_not_null())
    for method in runs["method"].unique(maintain_order=True):
        rows = runs.filter(pl.col("method") == method).sort("bs")
        ax.errorbar(
            rows["bs"], rows["Avg"], yerr=rows["Avg std"], marker="o", capsize=3, label=method
        )
    for row in grouped.filter(pl.col("bs").is_null()).iter_rows(named=True):
        ax.axhline(row["Avg"], linestyle=":", color="grey")
        ax.annotate(
            row["method"],
            (0.01, row["Avg"]),
            xycoords=("axes fraction", "data"),
            fontsize=7,
            color="grey",
            va="bottom",
        )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size")
    ax.set_ylabel("STS Avg (Spearman × 100)")
    ax.legend(fontsize=8)
    return _save(fig, stem)


def alignment_uniformity(scores: pl.DataFrame, stem: str | Path) -> list[Path]:
    """Alignment (x) against uniformity (y), one labelled point per run; lower-left is better."""
    rows = scores.drop_nulls(["alignment", "uniformity"])
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.scatter(rows["alignment"], rows["uniformity"], c=rows["Avg"], cmap="viridis")
    for row in rows.iter_rows(named=True):
        ax.annotate(row["model"], (row["alignment"], row["uniformity"]), fontsize=7)
    ax.set_xlabel("alignment (lower is better)")
    ax.set_ylabel("uniformity (lower is better)")
    return _save(fig, stem)
