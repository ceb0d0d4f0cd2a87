"""Choose hyperparameters on STS-B dev only: a small grid, each trial mined, trained and scored.

Two rounds, as a study needs them: first the optimiser (learning rate, temperature, epochs) with
random batches, then the b3 miner's options (p, m, cluster size) at the best optimiser setting.
Every (trial, seed) is trained in this process (no per-run start-up), selected on STS-B dev as
training does, and logged as a nested MLflow run; the score of a trial is its mean best dev
Spearman over the seeds. The test sets are never read.

Example::

    grid = SweepGrid(lr=[0.01, 0.03], temperature=[0.1], epochs=[2], b3=[{"p": 2, "m": 16}])
    table = sweep(pairs, view, grid, student_factory, dev)
    print(sweep_markdown(table))
"""

import json
import logging
from collections.abc import Callable

import polars as pl

from embedlab import markdown
from embedlab.embeddings import TeacherView
from embedlab.mine import MINERS
from embedlab.mine.batches import batch_table
from embedlab.settings.sweep import SweepGrid
from embedlab.train import TrainConfig, train

log = logging.getLogger(__name__)


def _trial(
    pairs: pl.DataFrame,
    view: TeacherView,
    student: Callable[[int], tuple],
    dev,
    miner: str,
    options: dict,
    batch_size: int,
    epochs: int,
    lr: float,
    temperature: float,
    seed: int,
    eval_every: int,
) -> dict:
    texts = pairs["anchor"].to_list()
    mined, negatives, _ = MINERS[miner](
        view.anchor, texts, batch_size, epochs, seed, positives=view.positive, **options
    )
    batches = batch_table(mined, pairs["id"].to_list(), negatives)
    config = TrainConfig(lr=lr, temperature=temperature, eval_every=eval_every, seed=seed)
    model, head = student(seed)
    result = train(model, pairs, batches, config, head=head, score_dev=dev)
    return {
        "round": "optimiser" if miner == "random" else miner,
        "miner": miner,
        "options": json.dumps(options, sort_keys=True),
        "batch_size": batch_size,
        "epochs": epochs,
        "lr": lr,
        "temperature": temperature,
        "seed": seed,
        "steps": result.steps,
        "best_step": result.dev_step,
        "dev_spearman": result.dev_spearman,
    }


def sweep(
    pairs: pl.DataFrame,
    view: TeacherView,
    grid: SweepGrid,
    student: Callable[[int], tuple],
    dev,
    on_trial: Callable[[dict], None] | None = None,
) -> pl.DataFrame:
    """All trials of both rounds, one row per (trial, seed), with ``dev_spearman``.

    ``student(seed)`` builds a fresh student and its train-time head (None: none), as the
    train stage does; ``dev`` scores a model on STS-B dev
    (``embedlab.evaluate.dev_scorer``); ``on_trial(row)`` is called after each (the stage logs
    it to MLflow).
    """
    rows: list[dict] = []

    def run(miner: str, options: dict, epochs: int, lr: float, temperature: float) -> None:
        for seed in grid.seeds:
            row = _trial(
                pairs,
                view,
                student,
                dev,
                miner,
                options,
                grid.batch_size,
                epochs,
                lr,
                temperature,
                seed,
                grid.eval_every,
            )
            log.info("sweep: %s", row)
            rows.append(row)
            if on_trial:
                on_trial(row)

    for epochs in grid.epochs:
        for lr in grid.lr:
            for temperature in grid.temperature:
                run("random", {}, epochs, lr, temperature)
    best = best_setting(pl.DataFrame(rows))
    for options in grid.b3:
        run("b3", dict(options), best["epochs"], best["lr"], best["temperature"])
    return pl.DataFrame(rows)


def summary(table: pl.DataFrame) -> pl.DataFrame:
    """Mean and std of the dev score per trial (over seeds), best first within each round."""
    keys = ["round", "miner", "options", "batch_size", "epochs", "lr", "temperature"]
    return (
        table.group_by(keys, maintain_order=True)
        .agg(
            pl.len().alias("seeds"),
            pl.col("dev_spearman").mean().alias("dev_mean"),
            pl.col("dev_spearman").std().alias("dev_std"),
            pl.col("best_step").mean().alias("best_step_mean"),
            pl.col("steps").first(),
        )
        .sort(["round", "dev_mean"], descending=[True, True])
    )


def best_setting(table: pl.DataFrame, miner: str = "random") -> dict:
    """The trial of ``miner`` with the highest mean dev score over seeds."""
    rows = summary(table.filter(pl.col("miner") == miner))
    if rows.height == 0:
        raise LookupError(f"the sweep has no trial of miner {miner!r}")
    return rows.row(0, named=True)


def sweep_markdown(table: pl.DataFrame) -> str:
    """Both rounds as Markdown, the chosen trial of each first and in bold."""
    out = []
    for round_name, part in summary(table).group_by("round", maintain_order=True):
        out.append(
            f"\n**{round_name[0]}** (batch size {part['batch_size'][0]}; mean ± std of "
            f"the best STS-B dev Spearman over {part['seeds'][0]} seeds)\n"
        )
        rows = []
        for i, r in enumerate(part.iter_rows(named=True)):
            dev = f"{r['dev_mean']:.2f} ± {r['dev_std'] or 0:.2f}"
            rows.append(
                [
                    f"{r['miner']} {r['options']}",
                    r["epochs"],
                    f"{r['lr']:g}",
                    f"{r['temperature']:g}",
                    "**" + dev + "**" if i == 0 else dev,
                    f"{r['best_step_mean']:.0f} / {r['steps']}",
                ]
            )
        header = ["miner options", "epochs", "lr", "temperature", "dev", "best step / steps"]
        out.append(markdown.table(header, rows).rstrip("\n"))
    return "\n".join(out).lstrip("\n") + "\n"


def sweep_page(table: pl.DataFrame, experiment: str) -> str:
    """The sweep's Markdown page with its provenance (commit, machine) and the chosen values."""
    from embedlab.page import page

    chosen = best_setting(table)
    text = (
        f"Chosen: lr {chosen['lr']:g}, temperature {chosen['temperature']:g}, epochs "
        f"{chosen['epochs']} (best mean dev over seeds)"
    )
    if (table["miner"] == "b3").any():
        text += f"; b3 options {best_setting(table, 'b3')['options']}"
    sections = {"Chosen": text + ".", "Trials": sweep_markdown(table)}
    title = "Hyperparameter sweep on STS-B dev"
    return page(title, sections, experiments=[experiment], rule="sweep")
