"""The STS table (SimCSE's layout): one row per model, STS12-16, STS-B, SICK-R and Avg.

Values come from MLflow runs of the evaluate stage, never from files typed by hand, so
`snakemake tables` rebuilds the table from tracked runs alone.

Example::

    scores = fetch_scores(["teacher", "b3-bs32-seed0"])
    print(to_markdown(scores))
"""

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

from embedlab import markdown
from embedlab.cache import file_sha256
from embedlab.contracts import (
    GEOMETRY,
    GRID_WILDCARDS,
    IN_BATCH_SIM_TABLE,
    RUN,
    TAG_SCORES_SHA256,
    TAG_STAGE,
    TAG_SYNTH_SOURCE,
    score_metric,
    source_label,
    wildcard_tag,
)
from embedlab.errors import NotFound
from embedlab.provenance import from_run_tags
from embedlab.tasks import AVERAGE, BEYOND_STS, STS_COLUMNS
from embedlab.tracking import ensure_experiment, experiment_name, retry

# metric key in MLflow -> column header
COLUMNS: dict[str, str] = {**STS_COLUMNS, AVERAGE: AVERAGE}


def finished_runs(experiment_id: str, stage: str, max_results: int | None = None) -> list:
    """The experiment's finished runs of one stage, newest first."""
    import mlflow

    extra = {"max_results": max_results} if max_results else {}
    return retry(
        mlflow.search_runs,
        experiment_ids=[experiment_id],
        filter_string=f"tags.{TAG_STAGE} = '{stage}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        output_format="list",
        **extra,
    )


def synthesis_source(experiment_id: str) -> str | None:
    """``<mode>/<generator>`` of the newest finished synthesize run of an experiment."""
    runs = finished_runs(experiment_id, "synthesize", max_results=1)
    if not runs:
        return None
    return runs[0].data.tags.get(TAG_SYNTH_SOURCE, "?")


def _cell(model: str) -> tuple[str, int, int]:
    """(miner, batch size, seed) of a grid run's name, to order an arm's own runs."""
    miner, bs, seed = RUN.match(model).groups()
    return miner, int(bs), int(seed)


def fetch_scores(
    models: Sequence[str],
    experiments: Sequence[str] = (),
    made: Mapping[str, str | Path] | None = None,
) -> pl.DataFrame:
    """The newest finished evaluate run of each model, as a table (one row per model: STS
    columns, geometry, the tasks beyond STS (``tasks.BEYOND_STS``, null where a run did not
    score them), and the run's ``lineage``: every code version behind it, as JSON).

    With ``made`` (model -> the scores file the tables rule takes as input), a model of the
    current experiment is read from the run that wrote that very file (its ``scores_sha256``
    tag), not from whichever run of the name is newest: a table never mixes in another config.

    Without ``experiments``, the current experiment. With several (one per synthesis source,
    say: a config each), every model is looked up in each, and rows are named
    ``<source> · <model>``, where the source is the experiment's synthesis (``partial/
    SmolLM2-135M-Instruct``), or the experiment's name where two share a source; the grouped
    table then has one method per (source, miner). Models that are not grid runs (teacher,
    student-init) are read from the first experiment only; from each other experiment, every
    grid run it evaluated (its own grid: an arm of a study may have other miners or batch
    sizes). Raises LookupError naming every model that has no finished evaluate run (for an
    experiment with no grid run at all: the models of the first experiment's grid).
    """
    names = list(experiments) or [None]
    ids = [ensure_experiment(name) for name in names]
    sources = [synthesis_source(i) for i in ids]
    if len(names) > 1 and len(set(sources)) < len(sources):
        sources = list(names)  # the sources do not tell the experiments apart
    wanted_sha = {m: file_sha256(p) for m, p in (made or {}).items()}
    current = experiment_name()  # the experiment whose files ``made`` names
    rows, absent = [], []
    for experiment, experiment_id, source in zip(names, ids, sources, strict=True):
        newest = {}
        for run in finished_runs(experiment_id, "evaluate"):
            model = run.data.tags.get(wildcard_tag("model"))
            sha = wanted_sha.get(model) if (experiment or current) == current else None
            if sha is None or run.data.tags.get(TAG_SCORES_SHA256) == sha:
                newest.setdefault(model, run)
        if experiment == names[0]:  # the current grid, and the reference rows
            wanted = list(models)
        else:  # another experiment's own grid: every grid run it evaluated (an arm may differ)
            grid = [m for m in models if RUN.match(m)]
            own = sorted((m for m in newest if m and RUN.match(m) and m not in grid), key=_cell)
            wanted = [m for m in grid if m in newest] + own or grid
        absent += [f"{experiment}/{m}" if experiment else m for m in wanted if m not in newest]
        for model in wanted:
            if model not in newest:
                continue
            run = newest[model]
            label = source_label(source, model) if len(names) > 1 else model
            lineage = json.dumps(from_run_tags(run.data.tags), sort_keys=True)
            row = {"model": label, "run_id": run.info.run_id, "source": source, "lineage": lineage}
            for key in COLUMNS:
                row[COLUMNS[key]] = run.data.metrics.get(score_metric(key, "spearman"))
            for key in GEOMETRY:  # SimCSE's alignment / uniformity on STS-B dev, when measured
                row[key] = run.data.metrics.get(score_metric("STSBenchmark", key))
            for (task, metric), column in BEYOND_STS.items():  # null where not scored
                row[column] = run.data.metrics.get(score_metric(task, metric))
            rows.append(row)
    if absent:
        how = " that wrote its scores file (rerun: --forcerun evaluate)" if made else ""
        raise NotFound(f"no finished evaluate run in MLflow{how} for model(s) {absent}")
    schema = {"model": pl.String, "run_id": pl.String, "source": pl.String, "lineage": pl.String}
    schema |= {c: pl.Float64 for c in [*COLUMNS.values(), *GEOMETRY, *BEYOND_STS.values()]}
    return pl.DataFrame(rows, schema=schema)


def fetch_similarity_histograms(models: Sequence[str]) -> pl.DataFrame:
    """In-batch teacher similarity histograms of the mine runs behind ``models``.

    Grid models (``<miner>-bs<B>-seed<S>``) are matched to the newest finished mine run with
    the same wildcards; others (teacher, student-init) have none, nor has a mine run without the
    histogram table. One row per (model, bin): ``miner``, ``bs``, ``seed``, ``center`` (bin
    centre), ``density`` of the mined batches and ``random_density`` of random batches of the
    same size.
    """
    import mlflow

    experiment_id = ensure_experiment()
    newest = {}
    for run in finished_runs(experiment_id, "mine"):
        tags = run.data.tags
        key = tuple(tags.get(wildcard_tag(k)) for k in GRID_WILDCARDS)
        newest.setdefault(key, run)
    wanted = {}  # run id -> the models it batched
    for model in models:
        match = RUN.match(model)
        if match and match.groups() in newest:
            wanted.setdefault(newest[match.groups()].info.run_id, []).append(model)
    if not wanted:
        return pl.DataFrame()
    try:  # one query; runs without the table (logged before it existed) are skipped
        table = retry(
            mlflow.MlflowClient().load_table,
            experiment_id,
            IN_BATCH_SIM_TABLE,
            run_ids=list(wanted),
            extra_columns=["run_id"],
        )
    except mlflow.exceptions.MlflowException:  # none of them has it
        return pl.DataFrame()
    hist = pl.from_pandas(table)
    frames = []
    for run_id, names in wanted.items():
        for model in names:
            match = RUN.match(model)
            frames.append(
                hist.filter(pl.col("run_id") == run_id).select(
                    pl.lit(model).alias("model"),
                    pl.lit(match[1]).alias("miner"),
                    pl.lit(int(match[2])).alias("bs"),
                    pl.lit(int(match[3])).alias("seed"),
                    ((pl.col("low") + pl.col("high")) / 2).alias("center"),
                    "density",
                    "random_density",
                )
            )
    return pl.concat(frames) if frames else pl.DataFrame()


def _cells(scores: pl.DataFrame, bold: str) -> list[list[str]]:
    best = {c: scores[c].max() for c in COLUMNS.values()}
    out = []
    for row in scores.iter_rows(named=True):
        cells = [row["model"]]
        for c in COLUMNS.values():
            value = row[c]
            text = "–" if value is None else f"{value:.2f}"
            cells.append(bold.format(text) if value is not None and value == best[c] else text)
        out.append(cells)
    return out


def to_markdown(scores: pl.DataFrame) -> str:
    """A Markdown table; the best value of each column in bold."""
    return markdown.table(["Model", *COLUMNS.values()], _cells(scores, "**{}**"))


def latex_escape(text: str) -> str:
    return text.replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")


def latex_tabular(first: str, rows: list[list[str]]) -> str:
    r"""A booktabs tabular: header ``first`` + the columns, then ``rows`` (cells already LaTeX;
    a row ``[r"\midrule"]`` is a rule)."""
    header = " & ".join([first, *COLUMNS.values()]) + r" \\"
    body = [cells[0] if cells == [r"\midrule"] else " & ".join(cells) + r" \\" for cells in rows]
    return "\n".join(
        [
            r"\begin{tabular}{l" + "r" * len(COLUMNS) + "}",
            r"\toprule",
            header,
            r"\midrule",
            *body,
            r"\bottomrule",
            r"\end{tabular}",
            "",
        ]
    )


def to_latex(scores: pl.DataFrame) -> str:
    """A booktabs LaTeX table; the best value of each column in bold."""
    cells = _cells(scores, r"\textbf{{{}}}")
    return latex_tabular("Model", [[latex_escape(c) for c in row] for row in cells])
