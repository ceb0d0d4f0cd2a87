"""Why a miner helps or not: in-batch hardness and false negatives per miner and batch size.

Read from the mine runs in MLflow (the figures the mine stage logs for its batch file and for
random batches of the same size), averaged over seeds.

Example::

    print(mining_markdown(fetch_mining()))
"""

from collections.abc import Sequence

import polars as pl

from embedlab import markdown
from embedlab.contracts import (
    FALSE_NEGATIVES,
    GRID_WILDCARDS,
    HARDNESS,
    RANDOM_FALSE_NEGATIVES,
    RANDOM_HARDNESS,
    source_label,
    wildcard_tag,
)
from embedlab.tables.sts import finished_runs
from embedlab.tracking import ensure_experiment

# the mine run's metric -> its column here
FIGURES = {
    HARDNESS: "hardness",
    RANDOM_HARDNESS: "random hardness",
    FALSE_NEGATIVES: "false negatives",
    RANDOM_FALSE_NEGATIVES: "random false negatives",
}


def fetch_mining(experiments: Sequence[str] = ()) -> pl.DataFrame:
    """One row per (miner, batch size, seed) of each of ``experiments`` (the current experiment
    when none is given): the newest finished mine run's figures. With several experiments the
    miner is named by its experiment (``source_label``), as the score rows are, so that each
    data set's or arm's batches keep their own row."""
    rows = []
    names = list(experiments) or [None]
    for experiment in names:
        seen = set()
        for run in finished_runs(ensure_experiment(experiment), "mine"):
            tags = run.data.tags
            key = tuple(tags.get(wildcard_tag(k)) for k in GRID_WILDCARDS)
            if None in key or key in seen:
                continue
            seen.add(key)
            metrics = run.data.metrics
            miner = source_label(experiment, key[0]) if len(names) > 1 else key[0]
            rows.append(
                {"miner": miner, "bs": int(key[1]), "seed": int(key[2])}
                | {name: metrics.get(metric) for metric, name in FIGURES.items()}
            )
    schema = {"miner": pl.String, "bs": pl.Int64, "seed": pl.Int64}
    return pl.DataFrame(rows, schema=schema | dict.fromkeys(FIGURES.values(), pl.Float64))


def mining_summary(runs: pl.DataFrame, order: Sequence[str] = ()) -> pl.DataFrame:
    """Mean over seeds per (miner, batch size); miners in ``order``, then as they appear."""
    names = list(dict.fromkeys([*order, *runs["miner"].unique(maintain_order=True)]))
    rank = {m: i for i, m in enumerate(names)}
    return (
        runs.group_by("miner", "bs")
        .agg(pl.len().alias("seeds"), *[pl.col(c).mean() for c in FIGURES.values()])
        .with_columns(order=pl.col("miner").replace_strict(rank, return_dtype=pl.Int64))
        .sort("order", "bs")
        .drop("order")
    )


def mining_markdown(runs: pl.DataFrame, order: Sequence[str] = ()) -> str:
    """Hardness (mean teacher cosine of in-batch anchor pairs) and the estimated false-negative
    rate (in-batch anchors closer than the anchor's own positive), each beside random batches."""
    rows = [
        [
            r["miner"],
            r["bs"],
            r["seeds"],
            f"{r['hardness']:.4f}",
            f"{r['random hardness']:.4f}",
            f"{r['false negatives']:.4%}",
            f"{r['random false negatives']:.4%}",
        ]
        for r in mining_summary(runs, order).iter_rows(named=True)
    ]
    header = ["miner", "B", "seeds", "hardness", "random", "false negatives", "random"]
    return markdown.table(header, rows)
