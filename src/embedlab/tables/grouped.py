"""The paper view of the runs: mean ± std over seeds per method and batch size, and paired
comparisons of two methods over seeds (paired t).

Run names follow the grid, ``<method>-bs<B>-seed<S>``; other rows (teacher, student-init) are
kept as they are. Input is ``fetch_scores``' table (one row per run, one column per task).

Example::

    scores = fetch_scores(models)
    print(grouped_markdown(group(scores)))
    print(paired_seeds(scores, "b3", "random", batch_size=32))
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from embedlab import markdown
from embedlab.contracts import RUN, source_label, split_source
from embedlab.errors import SettingError
from embedlab.schemas import DataError
from embedlab.tables.sts import COLUMNS, latex_escape, latex_tabular
from embedlab.tasks import BEYOND_STS, STS_COLUMNS

TASKS = list(STS_COLUMNS.values())
STS = list(COLUMNS.values())
BEYOND = list(BEYOND_STS.values())


def _parse(scores: pl.DataFrame) -> pl.DataFrame:
    parts = [RUN.match(m) for m in scores["model"]]
    return scores.with_columns(
        method=pl.Series(
            [p["method"] if p else m for p, m in zip(parts, scores["model"], strict=True)]
        ),
        bs=pl.Series([int(p["bs"]) if p else None for p in parts], dtype=pl.Int64),
        seed=pl.Series([int(p["seed"]) if p else None for p in parts], dtype=pl.Int64),
    )


def scored(scores: pl.DataFrame, columns: Sequence[str]) -> list[str]:
    """The ``columns`` that ``scores`` has, with at least one value (a task no run scored is
    left out of tables and comparisons)."""
    return [c for c in columns if c in scores.columns and scores[c].drop_nulls().len()]


def group(scores: pl.DataFrame) -> pl.DataFrame:
    """One row per (method, batch size): ``n`` seeds, each score column's mean and ``<col>
    std`` (sample std, 0 with one seed), in the order methods first appear. Columns: STS, then
    the tasks beyond STS that ``scores`` has.

    >>> values = {c: [1.0, 3.0] for c in COLUMNS.values()}
    >>> g = group(pl.DataFrame({"model": ["b3-bs8-seed0", "b3-bs8-seed1"], **values}))
    >>> (g["group"][0], g["n"][0], g["Avg"][0], round(g["Avg std"][0], 3))
    ('b3, B=8', 2, 2.0, 1.414)
    """
    parsed = _parse(scores).with_row_index("order")
    aggregations = [pl.col("order").min(), pl.len().alias("n")]
    for c in [*STS, *(c for c in BEYOND if c in scores.columns)]:
        aggregations += [pl.col(c).mean(), pl.col(c).std(ddof=1).fill_null(0.0).alias(f"{c} std")]
    out = parsed.group_by("method", "bs").agg(aggregations).sort("order")
    label = [
        m if b is None else f"{m}, B={b}" for m, b in zip(out["method"], out["bs"], strict=True)
    ]
    return out.with_columns(group=pl.Series(label)).drop("order")


def load_reference(path: str | Path) -> list[dict]:
    """Published rows from a YAML list of {name, source, scores: {column: value}}.

    Every row must cite its source and give every column; errors name the file and the row.
    """
    import yaml

    path = Path(path)
    rows = yaml.safe_load(path.read_text()) or []
    for i, row in enumerate(rows):
        missing = {"name", "source", "scores"} - set(row)
        if missing:
            raise DataError(f"{path}: reference row {i} lacks {sorted(missing)}")
        absent = [c for c in COLUMNS.values() if c not in row["scores"]]
        if absent:
            raise DataError(f"{path}: reference row {row['name']!r} lacks columns {absent}")
    return rows


def _reference_cells(reference: Sequence[dict]) -> list[list[str]]:
    return [
        [f"{r['name']} (reported: {r['source']})"]
        + [f"{float(r['scores'][c]):.2f}" for c in COLUMNS.values()]
        for r in reference
    ]


def _cells(
    grouped: pl.DataFrame, bold: str, pm: str, columns: Sequence[str] = STS
) -> list[list[str]]:
    best = {c: grouped[c].max() for c in columns}
    rows = []
    for row in grouped.iter_rows(named=True):
        cells = [row["group"] + (f" ({row['n']} seeds)" if row["n"] > 1 else "")]
        for c in columns:
            mean = row[c]
            if mean is None:
                cells.append("–")
                continue
            text = f"{mean:.2f}"
            text = bold.format(text) if mean == best[c] else text
            cells.append(text + (f"{pm}{row[f'{c} std']:.2f}" if row["n"] > 1 else ""))
        rows.append(cells)
    return rows


def grouped_markdown(grouped: pl.DataFrame, reference: Sequence[dict] = ()) -> str:
    """Markdown: mean ± std over seeds; the best measured mean of each column in bold;
    ``reference`` rows (published results) follow under their own heading row."""
    rows = _cells(grouped, "**{}**", " ± ")
    if reference:
        rows += [["*reported in papers*", *[""] * len(COLUMNS)], *_reference_cells(reference)]
    return markdown.table(["Method", *COLUMNS.values()], rows)


def beyond_markdown(grouped: pl.DataFrame) -> str:
    """Markdown of the tasks beyond STS (``tasks.BEYOND_STS``: retrieval nDCG@10 and
    Recall@10, pair-classification AP, x 100): mean ± std over seeds, the best mean of each
    column in bold; empty when no run scored any of them.

    >>> sts = {c: [50.0] for c in STS}
    >>> g = group(pl.DataFrame({"model": ["a"], **sts, "SICK-E AP": [70.0]}))
    >>> print(beyond_markdown(g).splitlines()[2])
    | a | **70.00** |
    """
    columns = scored(grouped, BEYOND)
    if not columns:
        return ""
    return markdown.table(["Method", *columns], _cells(grouped, "**{}**", " ± ", columns))


def grouped_html(grouped: pl.DataFrame, reference: Sequence[dict] = ()) -> str:
    """A standalone HTML page of the grouped table (for the Snakemake report)."""
    import html

    def row(cells: list[str], tag: str = "td") -> str:
        out = []
        for c in cells:
            bold = c.startswith("**")
            text = html.escape(c.replace("**", ""))
            out.append(f"<{tag}>{'<b>' + text + '</b>' if bold else text}</{tag}>")
        return "<tr>" + "".join(out) + "</tr>"

    body = [row(["Method", *COLUMNS.values()], "th")]
    body += [row(c) for c in _cells(grouped, "**{}**", " ± ")]
    if reference:
        body.append(f'<tr><td colspan="{len(COLUMNS) + 1}"><i>reported in papers</i></td></tr>')
        body += [row(c) for c in _reference_cells(reference)]
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>STS</title>"
        "<style>td,th{padding:2px 8px;text-align:right}td:first-child{text-align:left}</style>"
        "</head><body><table id='sts'>" + "".join(body) + "</table></body></html>\n"
    )


def grouped_latex(grouped: pl.DataFrame, reference: Sequence[dict] = ()) -> str:
    """booktabs LaTeX: mean$\\pm$std over seeds; the best measured mean of each column in
    bold; ``reference`` rows below a midrule."""
    rows = [[latex_escape(c) for c in cells] for cells in _cells(grouped, "**{}**", " ± ")]
    rows = [[_bold_pm(c) for c in cells] for cells in rows]
    if reference:
        rows.append([r"\midrule"])
        rows += [[latex_escape(c) for c in cells] for cells in _reference_cells(reference)]
    return latex_tabular("Method", rows)


def _bold_pm(cell: str) -> str:
    """Markdown-style "**x** ± s" cell to LaTeX "\textbf{x}$\\pm$s"."""
    if cell.startswith("**"):
        value, _, rest = cell[2:].partition("**")
        cell = rf"\textbf{{{value}}}{rest}"
    return cell.replace(" ± ", r"$\pm$")


def paired_seeds(
    scores: pl.DataFrame,
    a: str,
    b: str,
    batch_size: int,
    b_batch_size: int | None = None,
    column: str = "Avg",
) -> dict[str, float | int | str]:
    """Method ``a`` at ``batch_size`` minus method ``b`` at ``b_batch_size`` (default the same),
    paired by seed: the seed is the unit of evidence, never a (seed, task) cell.

    Per seed the difference of ``column`` (the STS Avg, or a task beyond STS); reported as
    ``score``: its mean, the paired t 95% interval
    (Student's t with seeds − 1 degrees of freedom), the two-sided p-value of a paired t-test,
    and in how many seeds ``a`` came out ahead. With one seed there is no interval (NaN).
    """
    from scipy import stats

    parsed = _parse(scores)
    b_batch_size = batch_size if b_batch_size is None else b_batch_size
    left = parsed.filter((pl.col("method") == a) & (pl.col("bs") == batch_size))
    right = parsed.filter((pl.col("method") == b) & (pl.col("bs") == b_batch_size))
    joined = left.select("seed", column).join(right.select("seed", column), on="seed", suffix="_b")
    joined = joined.drop_nulls()
    if joined.height == 0:
        raise SettingError(
            f"no seed has {column} of both {a!r} at B={batch_size} and {b!r} at B={b_batch_size}"
        )
    diffs = (joined[column] - joined[f"{column}_b"]).to_numpy()
    n, mean = diffs.size, float(diffs.mean())
    if n > 1:
        sd = float(diffs.std(ddof=1))
        half = float(stats.t.ppf(0.975, n - 1)) * sd / np.sqrt(n)
        # identical differences in every seed: no spread, so the t-test is degenerate
        p = float(stats.ttest_1samp(diffs, 0.0).pvalue) if sd > 0 else float(mean == 0)
    else:
        sd, half, p = float("nan"), float("nan"), float("nan")
    return {
        "score": column,
        "a": a,
        "b": b,
        "batch_size": batch_size,
        "b_batch_size": b_batch_size,
        "seeds": n,
        "diff": mean,
        "sd": sd,
        "low": mean - half,
        "high": mean + half,
        "p": p,
        "wins": int((diffs > 0).sum()),
    }


def comparisons(
    scores: pl.DataFrame,
    baseline: str = "random",
    extra: Sequence[dict] = (),
    columns: Sequence[str] = ("Avg",),
) -> list[dict]:
    """The comparisons a study reports, each paired by seed (``paired_seeds``) on each of
    ``columns`` that the runs scored (one result per comparison and column):

    - every miner against ``baseline`` (random) of its own source at each batch size;
    - with several sources (methods named ``<source> · <miner>``, one experiment each), every
      source against the first source, same miner and batch size;
    - ``extra`` pairs ``{a, a_bs, b, b_bs}`` across batch sizes (B3's "b3 at 64 against random
      at 512").
    """
    parsed = _parse(scores).filter(pl.col("bs").is_not_null())
    methods = parsed["method"].unique(maintain_order=True).to_list()
    sources = list(dict.fromkeys(split_source(m)[0] for m in methods))
    pairs = []  # (a, b, a's batch size, b's)
    for bs in sorted(set(parsed["bs"])):
        present = set(parsed.filter(pl.col("bs") == bs)["method"])
        for m in methods:
            source, miner = split_source(m)
            base = source_label(source, baseline) if source else baseline
            if m in present and miner != baseline and base in present:
                pairs.append((m, base, bs, bs))
        for m in methods:
            source, miner = split_source(m)
            first = source_label(sources[0], miner)
            if source and source != sources[0] and m in present and first in present:
                pairs.append((m, first, bs, bs))
    pairs += [(p["a"], p["b"], p["a_bs"], p["b_bs"]) for p in extra]
    return [
        paired_seeds(scores, a, b, a_bs, b_bs, column)
        for column in scored(parsed, columns)
        for a, b, a_bs, b_bs in pairs
    ]


def _sizes(r: dict) -> str:
    same = r["b_batch_size"] == r["batch_size"]
    return f"{r['batch_size']}" + ("" if same else f" vs {r['b_batch_size']}")


def _interval(r: dict) -> str:
    return "–" if np.isnan(r["low"]) else f"[{r['low']:+.2f}, {r['high']:+.2f}]"


def comparisons_markdown(results: Sequence[dict], column: str = "Avg") -> str:
    """One line per comparison on ``column`` (the STS Avg): the mean difference in points over
    paired seeds, its paired t 95% interval, the p-value and the seeds in which A was ahead."""
    rows = []
    for r in (r for r in results if r["score"] == column):
        p = "–" if np.isnan(r["p"]) else f"{r['p']:.3f}"
        wins = f"{r['wins']}/{r['seeds']}"
        rows.append(
            [
                f"{r['a']} − {r['b']}",
                _sizes(r),
                r["seeds"],
                f"{r['diff']:+.2f}",
                _interval(r),
                p,
                wins,
            ]
        )
    header = ["A − B", "batch sizes", "seeds", "difference", "95% interval (paired t)", "p"]
    return markdown.table([*header, "A ahead"], rows, align="lrrrlrr")


def beyond_comparisons_markdown(results: Sequence[dict]) -> str:
    """The same comparisons on the tasks beyond STS, one column per task: in each cell the
    mean difference over paired seeds, its paired t 95% interval and the seeds in which A was
    ahead; empty when no run scored a task beyond STS.

    >>> r = {"score": "SICK-E AP", "a": "b3", "b": "random", "batch_size": 8,
    ...      "b_batch_size": 8, "seeds": 2, "diff": 1.0, "low": 0.5, "high": 1.5, "wins": 2}
    >>> print(beyond_comparisons_markdown([r]).splitlines()[2])
    | b3 − random | 8 | 2 | +1.00 [+0.50, +1.50] 2/2 |
    """
    columns = [c for c in BEYOND if any(r["score"] == c for r in results)]
    if not columns:
        return ""
    cells: dict[tuple, dict[str, str]] = {}
    for r in results:
        if r["score"] in columns:
            key = (f"{r['a']} − {r['b']}", _sizes(r), r["seeds"])
            text = f"{r['diff']:+.2f} {_interval(r)} {r['wins']}/{r['seeds']}"
            cells.setdefault(key, {})[r["score"]] = text
    rows = [[*key, *(row.get(c, "–") for c in columns)] for key, row in cells.items()]
    header = ["A − B", "batch sizes", "seeds", *columns]
    return markdown.table(header, rows, align="lrr" + "l" * len(columns))
