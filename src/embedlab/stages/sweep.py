"""``embedlab sweep``: choose lr, temperature, epochs and b3's options on STS-B dev only.

Config section ``sweep`` (the grid) and the student keys of ``train``; every trial is a nested
MLflow run.
"""

import argparse
import logging

from embedlab import schemas
from embedlab.atomic import atomic_write, write_text
from embedlab.settings import add_arguments as add_settings
from embedlab.settings import from_args
from embedlab.settings.sweep import SweepSettings
from embedlab.tracking import StageRun, experiment_name

HELP = "choose lr, temperature, epochs and b3 options on STS-B dev"
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pairs", required=True, help="the synthesize stage's pairs.parquet")
    parser.add_argument("--embeddings", required=True, help="the teacher's .npy")
    parser.add_argument("--ids", required=True, help="the teacher's ids parquet")
    parser.add_argument("--md", required=True, help="Markdown table of both rounds")
    parser.add_argument("--csv", required=True, help="one row per trial and seed")
    add_settings(parser, SweepSettings)


def run(args: argparse.Namespace, tracker: StageRun) -> None:
    import mlflow

    from embedlab.embeddings import TeacherView
    from embedlab.evaluate import dev_scorer
    from embedlab.sweep import best_setting, summary, sweep, sweep_page
    from embedlab.tracking import retry
    from embedlab.train.student import student_from, train_head

    s: SweepSettings = from_args(SweepSettings, args)
    pairs = schemas.read(args.pairs, schemas.Pairs)
    view = TeacherView.load(args.embeddings, args.ids, pairs)

    def student(seed: int):  # the train stage's student and head, from the same settings
        model = student_from(s, args.mirror, seed)
        return model, train_head(model, s.pooling)

    def log_trial(row: dict) -> None:
        name = f"{row['miner']}-lr{row['lr']:g}-t{row['temperature']:g}-e{row['epochs']}"
        with retry(mlflow.start_run, run_name=name, nested=True):
            keys = ("miner", "options", "batch_size", "epochs", "lr", "temperature", "seed")
            retry(mlflow.log_params, {k: row[k] for k in keys})
            retry(
                mlflow.log_metrics,
                {"dev_spearman": row["dev_spearman"], "best_step": row["best_step"]},
            )

    table = sweep(pairs, view, s, student, dev_scorer(args.mirror), on_trial=log_trial)
    atomic_write(args.csv, table.write_csv)
    write_text(args.md, sweep_page(table, experiment_name()))
    chosen = {"train": best_setting(table), "b3": best_setting(table, "b3") if s.b3 else None}
    tracker.log_metrics(
        {"trials": float(summary(table).height), "best_dev": chosen["train"]["dev_mean"]}
    )
    for path in (args.csv, args.md):
        tracker.log_artifact(path, "sweep")
    log.info("sweep: chosen %s", chosen)
