"""``embedlab evaluate``: STS12-16, STS-B, SICK-R (SentEval "all"), geometry, retrieval, pair
classification, MTEB.

Config section ``evaluate``. Scores are cached by content (the model's files, the settings, the
mirror and the evaluation code), so an unchanged model is not scored twice.
"""

import argparse
import logging
from pathlib import Path

import polars as pl

from embedlab import provenance, schemas
from embedlab.cache import file_sha256
from embedlab.contracts import TAG_SCORES_SHA256, score_metric
from embedlab.errors import SettingError
from embedlab.settings import add_arguments as add_settings
from embedlab.settings import from_args
from embedlab.settings.evaluate import EvaluateSettings
from embedlab.stages import split_units
from embedlab.sts_data import STS_TASKS
from embedlab.tracking import StageRun

HELP = "STS12-16, STS-B, SICK-R (SentEval 'all')"
# the code a score depends on: a change of any of it scores again
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", required=True, nargs="+", help="model folders or public ids (one or more)"
    )
    parser.add_argument("--name", required=True, nargs="+", help="row name in tables, per model")
    parser.add_argument("--out", required=True, nargs="+", help="scores parquet, per model")
    add_settings(parser, EvaluateSettings)


def units(args: argparse.Namespace) -> list[argparse.Namespace]:
    """One unit per model (tagged ``model`` with its name), all in one process.

    Example: ``embedlab evaluate --model m0 m1 --name s0 s1 --out s0.parquet s1.parquet``
    """
    per_model = {"model": args.model, "name": args.name, "out": args.out}
    return split_units(args, per_model, ("model", args.name))


def run(args: argparse.Namespace, tracker: StageRun) -> None:
    s: EvaluateSettings = from_args(EvaluateSettings, args)
    from embedlab.evaluate.pairs import PAIR_TASKS

    for what, names, known in [("STS", s.tasks, STS_TASKS), ("pair", s.pairs, PAIR_TASKS)]:
        unknown = [t for t in names if t not in known]
        if unknown:
            raise SettingError(f"unknown {what} task {unknown[0]!r}; known: {sorted(known)}")
    if Path(args.model).is_dir():  # a trained student: the code behind it, carried on
        provenance.TRACKER.add(provenance.read_folder_lineage(args.model))
    cached = _cache_entry(s, args.model, args.mirror) if s.cache_dir else None
    scores = _cached(cached) if cached else None
    hit = scores is not None
    if not hit:
        scores = score(args.model, s, args.mirror)
        if cached is not None:
            schemas.write(scores, cached, schemas.Scores)
    else:
        log.info("evaluate %s: scores of the same model and code from %s", args.name, cached)
    schemas.write(scores, args.out, schemas.Scores)
    metrics = {
        score_metric(r["task"], r["metric"]): r["value"] for r in scores.iter_rows(named=True)
    }
    tracker.log_metrics(metrics | ({"cache_hit": 1.0} if hit else {}))
    tracker.log_artifact(args.out, "eval")
    tracker.set_tag(TAG_SCORES_SHA256, file_sha256(args.out))
    log.info("evaluate %s:\n%s", args.name, scores)


def score(model_name: str, s: EvaluateSettings, mirrors: list[str]) -> pl.DataFrame:
    """Every score the settings ask for, as a Scores table."""
    from embedlab.encode import load_encoder
    from embedlab.evaluate import evaluate_sts
    from embedlab.sts_data import load_sts

    model = load_encoder(model_name, mirrors)
    scores = evaluate_sts(model, [load_sts(t, mirrors) for t in s.tasks], s.batch_size)
    if s.geometry:
        from embedlab.evaluate.geometry import geometry_scores

        dev = load_sts("STSBenchmark", mirrors, split="dev")
        scores = scores.vstack(geometry_scores(model, dev, s.batch_size))
    for name in s.retrieval:
        from embedlab.evaluate.retrieval import evaluate_retrieval, retrieval_task

        task = retrieval_task(name, mirrors)
        scores = scores.vstack(evaluate_retrieval(model, task, s.batch_size))
    for name in s.pairs:
        from embedlab.evaluate.pairs import PAIR_TASKS, evaluate_pairs

        scores = scores.vstack(evaluate_pairs(model, PAIR_TASKS[name](mirrors), s.batch_size))
    if s.mteb:
        from embedlab.evaluate.mteb_adapter import evaluate_mteb

        scores = scores.vstack(evaluate_mteb(model, s.mteb, mirrors, s.batch_size))
    return scores


def _cache_entry(s: EvaluateSettings, model: str, mirrors: list[str]) -> Path:
    """Where the scores of this model, settings, data and code are kept."""
    from embedlab.cache import content_key
    from embedlab.provenance import stage_code_version
    from embedlab.resolve import model_identity

    setting = [s.tasks, s.geometry, s.retrieval, s.pairs, s.mteb, s.batch_size]
    setting.append([str(Path(m).resolve()) for m in mirrors])  # where the data came from
    key = content_key(model_identity(model, mirrors), setting, stage_code_version("evaluate"))
    return Path(s.cache_dir) / f"{key}.parquet"


def _cached(entry: Path) -> pl.DataFrame | None:
    if not entry.exists():
        return None
    try:
        return schemas.read(entry, schemas.Scores)
    except schemas.DataError as err:  # a damaged entry: discarded, scored again
        log.warning("evaluation cache entry is damaged, scoring again: %s", err)
        entry.unlink()
        return None
