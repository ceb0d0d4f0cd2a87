"""``embedlab train``: a student trained with InfoNCE over a batch file (config ``train``).

Without ``--batches`` the untrained student is exported (the ``student-init`` row).
"""

import argparse
import logging
import shutil
from pathlib import Path

from embedlab import schemas
from embedlab.atomic import atomic_write
from embedlab.errors import SettingError
from embedlab.settings import add_arguments as add_settings
from embedlab.settings import from_args
from embedlab.settings.train import TrainSettings
from embedlab.tracking import StageRun

HELP = "train a student with InfoNCE over mined batches"
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pairs", help="the synthesize stage's pairs.parquet (with --batches)")
    parser.add_argument("--batches", help="batch file; without it the untrained student is saved")
    parser.add_argument("--out", required=True, help="model folder to write")
    parser.add_argument("--checkpoint-dir", help="where checkpoints go; a rerun resumes there")
    parser.add_argument(
        "--batch-size", type=int, help="the size of every mined batch (the grid's B), checked"
    )
    add_settings(parser, TrainSettings)


def run(args: argparse.Namespace, tracker: StageRun) -> None:
    from embedlab.train import train, train_head
    from embedlab.train.distributed import world
    from embedlab.train.loop import check_batches
    from embedlab.train.student import student_from

    s: TrainSettings = from_args(TrainSettings, args)
    student = student_from(s, args.mirror, s.seed)
    if args.batches:
        if not args.pairs:
            raise SettingError("train: --batches needs --pairs (the table the batches index)")
        pairs = schemas.read(args.pairs, schemas.Pairs)
        batches = schemas.read(args.batches, schemas.Batches)
        try:
            check_batches(batches, set(pairs["id"]), args.batch_size)
        except schemas.DataError as err:
            raise schemas.DataError(f"{args.batches}: {err}") from None
        tracker.log_input(pairs, args.pairs, "training")
        tracker.log_input(batches, args.batches, "training")
        score_dev = None
        if s.eval_every:
            from embedlab.evaluate import dev_scorer

            score_dev = dev_scorer(args.mirror)
        result = train(
            student,
            pairs,
            batches,
            s,
            on_step=lambda step, m: tracker.log_metrics(m, step),
            head=train_head(student, s.pooling),
            score_dev=score_dev,
            checkpoint_dir=args.checkpoint_dir,
        )
        student = result.model
        summary = {"steps": result.steps, "resumed_from_step": result.resumed_from}
        if result.dev_spearman is not None:
            summary |= {"best_dev_spearman": result.dev_spearman, "best_step": result.dev_step}
        tracker.log_metrics(summary)
        log.info("train: %s", summary)
    if world()[0] == 0:
        card = student.model_card_data
        card.language, card.license = list(s.language), s.license
        data = _training_data(args.pairs) if args.batches else "none (the untrained student)"
        atomic_write(args.out, lambda tmp: _export(student, tmp, s, data))
        if args.checkpoint_dir:  # the run is complete: its checkpoints have served
            shutil.rmtree(args.checkpoint_dir, ignore_errors=True)


def _training_data(pairs_path: str) -> str:
    """The training pairs as the model card names them: file, rows and how they were made."""
    pairs = schemas.read(pairs_path, schemas.Pairs)
    modes = ", ".join(sorted(set(pairs["mode"].to_list())))
    return f"{pairs.height} pairs ({modes}) from `{pairs_path}`"


def _export(student, folder: Path, s: TrainSettings, data: str) -> None:
    """Save the model, then fill in what sentence-transformers' card leaves unknown offline:
    the base model, the training data and, for a static student, its (absent) length limit.
    The folder carries the lineage of the code that made it (``embedlab.provenance``)."""
    from embedlab.provenance import write_folder_lineage

    student.save(str(folder))
    write_folder_lineage(folder)
    card = folder / "README.md"
    if not card.exists():
        return
    length = "no limit (a static student sums the token embeddings of the whole text)"
    lines = []
    for line in card.read_text(encoding="utf-8").splitlines():
        if line.startswith("<!-- - **Base model:**"):
            line = f"- **Base model:** `{s.init}` (student `{s.student}`)"
        elif line.startswith("<!-- - **Training Dataset:**"):
            line = f"- **Training Dataset:** {data}"
        elif line == "- **Maximum Sequence Length:** inf tokens":
            line = f"- **Maximum Sequence Length:** {length}"
        lines.append(line)
    card.write_text("\n".join(lines) + "\n", encoding="utf-8")
