"""Paper figures from the tracked runs, as PNG (for the report) and PDF (for the paper).

- STS Avg against batch size, one line per miner (mean ± std over seeds);
- alignment against uniformity (SimCSE's Figure 2 axes), one point per run;
- in-batch teacher similarity histograms, one curve per miner (seeds averaged), one panel per
  batch size, random batches dashed.

Example::

    scores = fetch_scores(models)
    avg_vs_batch(group(scores), "results/default/figures/avg_vs_batch")
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402

from embedlab.atomic import write_figure  # noqa: E402


def _save(fig, stem: str | Path) -> list[Path]:
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    for path in paths:
        write_figure(fig, path, dpi=150, bbox_inches="tight")
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
    references = grouped.filter(pl.col("bs").is_null() & pl.col("Avg").is_not_null())
    for row in references.iter_rows(named=True):  # no Avg (some tasks not run): not drawn
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
    from embedlab.contracts import ALIGNMENT, GEOMETRY, RUN, UNIFORMITY

    rows = scores.drop_nulls(list(GEOMETRY))
    rows = rows.with_columns(
        method=pl.Series(
            [(m := RUN.match(x)) and m["method"] for x in rows["model"]], dtype=pl.String
        )
    )
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    grid = rows.filter(pl.col("method").is_not_null())
    for method in grid["method"].unique(maintain_order=True):  # one colour per method
        part = grid.filter(pl.col("method") == method)
        ax.scatter(part[ALIGNMENT], part[UNIFORMITY], s=12, label=method)
    for row in rows.filter(pl.col("method").is_null()).iter_rows(named=True):
        ax.scatter(row[ALIGNMENT], row[UNIFORMITY], marker="x", color="grey")
        ax.annotate(row["model"], (row[ALIGNMENT], row[UNIFORMITY]), fontsize=7)
    if grid.height:
        ax.legend(fontsize=7)
    ax.set_xlabel("alignment (lower is better)")
    ax.set_ylabel("uniformity (lower is better)")
    return _save(fig, stem)


def similarity_histograms(hists: pl.DataFrame, stem: str | Path) -> list[Path]:
    """Density of in-batch teacher similarity per miner; one panel per batch size.

    Harder batches move mass to the right. Seeds are averaged; the dashed grey curve is random
    batches of the same size (a reference every miner is drawn against).
    """
    sizes = sorted(hists["bs"].unique()) if hists.height else []
    fig, axes = plt.subplots(
        1, max(len(sizes), 1), figsize=(4.5 * max(len(sizes), 1), 3.2), squeeze=False
    )
    for ax, bs in zip(axes[0], sizes, strict=False):
        rows = hists.filter(pl.col("bs") == bs)
        mean = rows.group_by("miner", "center", maintain_order=True).agg(
            pl.col("density").mean(), pl.col("random_density").mean()
        )
        baseline = mean.group_by("center", maintain_order=True).agg(pl.col("random_density").mean())
        ax.plot(baseline["center"], baseline["random_density"], "--", color="grey", label="random")
        for miner in mean["miner"].unique(maintain_order=True):
            if miner == "random":
                continue  # drawn as the baseline
            part = mean.filter(pl.col("miner") == miner)
            ax.plot(part["center"], part["density"], drawstyle="steps-mid", label=miner)
        ax.set_title(f"B={bs}")
        ax.set_xlabel("teacher cosine similarity of in-batch pairs")
        ax.set_ylabel("density")
        ax.legend(fontsize=7)
    if not sizes:
        axes[0][0].text(0.5, 0.5, "no mine runs with histograms", ha="center", va="center")
    return _save(fig, stem)
