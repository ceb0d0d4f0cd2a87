"""Check a rerun against a published study: every per-seed, per-task score of the rerun's
models equals the committed one (``docs/studies/<study>/scores.csv``) to the page's precision.

``make verify-studies`` reruns a stated slice of each study from scratch and calls this on the
slice's table (``results/<experiment>/tables/sts.csv``); a cell that differs fails the check,
named with both values.

Example::

    python -m embedlab.verify results/verify-b3/tables/sts.csv docs/studies/b3/scores.csv
"""

import argparse
import math
import sys
from pathlib import Path

import polars as pl

from embedlab.schemas import DataError

# Spearman x 100 is published with two decimals: a rerun agrees when every cell is within
# half of the last digit shown (float noise below it is not a disagreement).
TOLERANCE = 0.005
KEY = "model"
NOT_SCORES = ("run_id", "source", "lineage")


def published_scores(table: pl.DataFrame) -> pl.DataFrame:
    """The per-seed scores of a ``tables/sts.csv``: the model and its score columns (the run
    ids and lineage that change with every rerun left out)."""
    return table.drop([c for c in NOT_SCORES if c in table.columns])


def differences(rerun: pl.DataFrame, published: pl.DataFrame) -> list[str]:
    """Every published cell of the rerun's models that the rerun does not reproduce (a model
    absent from the published table, or a published column absent from the rerun, included),
    as ``model / column: rerun x, published y``. Columns only the rerun has (a task added
    since) are not compared."""
    if KEY not in rerun.columns or KEY not in published.columns:
        raise DataError(f"a scores table needs the column {KEY!r}")
    rows = {r[KEY]: r for r in published.iter_rows(named=True)}
    columns = [c for c in published.columns if c != KEY]
    found = []
    for row in rerun.iter_rows(named=True):
        model = row[KEY]
        if model not in rows:
            found.append(f"{model}: not in the published scores")
            continue
        for column in columns:
            if column not in row:
                found.append(f"{model} / {column}: not in the rerun")
                continue
            value, other = row[column], rows[model][column]
            same = (value is None and other is None) or (
                value is not None
                and other is not None
                and math.isclose(value, other, abs_tol=TOLERANCE, rel_tol=0)
            )
            if not same:
                found.append(f"{model} / {column}: rerun {value}, published {other}")
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("rerun", type=Path, help="tables/sts.csv of the rerun slice")
    p.add_argument("published", type=Path, help="the study's committed scores.csv")
    p.add_argument(
        "--published-prefix",
        default="",
        help="rows of one experiment of a page over several (`syncse-gold · `): compared"
        " without the prefix",
    )
    args = p.parse_args(argv)
    rerun = published_scores(pl.read_csv(args.rerun))
    published = published_scores(pl.read_csv(args.published)).with_columns(
        pl.col(KEY).str.strip_prefix(args.published_prefix)
    )
    found = differences(rerun, published)
    cells = rerun.height * (published.width - 1)
    if found:
        print(f"{args.rerun}: {len(found)} of {cells} cells differ from {args.published}:")
        print("\n".join(f"  {line}" for line in found))
        return 1
    print(f"{args.rerun}: all {cells} cells ({rerun.height} models) match {args.published}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
