"""``embedlab synthesize``: LLM-written pairs, an imported set, or the corpus itself (SimCSE).

Config section ``synthesize``; the nested ``openai`` and ``import`` sections are the flags
``--openai-*`` and ``--import-*``.
"""

import argparse
import logging
import shutil
from pathlib import Path

import polars as pl

from embedlab import schemas
from embedlab.atomic import write_text
from embedlab.contracts import SYNTH_ACCEPTED, SYNTH_ROWS, TAG_SYNTH_MODE, TAG_SYNTH_SOURCE
from embedlab.errors import SettingError
from embedlab.settings import add_arguments as add_settings
from embedlab.settings import from_args
from embedlab.settings.synthesize import SynthesizeSettings
from embedlab.synth.filters import Filters
from embedlab.synth.generate import SynthSettings
from embedlab.tracking import StageRun

HELP = "LLM-written pairs, or an imported set"
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", help="corpus.parquet (partial, query; import.match_corpus)")
    parser.add_argument("--pairs-out", required=True, help="pairs.parquet to write (accepted rows)")
    parser.add_argument(
        "--rejected-out", required=True, help="rejected.parquet to write (with reasons)"
    )
    parser.add_argument("--samples-out", help="Markdown of 10 accepted and 10 rejected rows")
    parser.add_argument("--shards", help="folder of resumable shards (default: beside pairs)")
    add_settings(parser, SynthesizeSettings)


def run(args: argparse.Namespace, tracker: StageRun) -> None:
    s: SynthesizeSettings = from_args(SynthesizeSettings, args)
    tracker.set_tag(TAG_SYNTH_MODE, s.mode)
    tracker.set_tag(TAG_SYNTH_SOURCE, synthesis_source(s))
    filters = Filters.of(s)
    if s.mode == "unlabeled":  # unsupervised SimCSE: the corpus itself, no generator
        from embedlab.corpus.build import unlabeled_pairs

        pairs = unlabeled_pairs(schemas.read(_needed(args.corpus, s.mode), schemas.Corpus))
        rejected = pl.DataFrame(schema=schemas.polars_schema(schemas.Rejected))
        stats = {SYNTH_ROWS: float(pairs.height), SYNTH_ACCEPTED: float(pairs.height)}
    elif s.mode == "import":
        pairs, rejected, stats = _imported(s, filters, args.corpus, args.mirror)
    else:
        pairs, rejected, stats = _generated(s, args, tracker)
    schemas.write(rejected, args.rejected_out, schemas.Rejected)
    _check_yield(pairs, rejected, args.rejected_out, stats, tracker)
    schemas.write(pairs, args.pairs_out, schemas.Pairs)
    from embedlab.synth.generate import samples_markdown

    samples = Path(args.samples_out or Path(args.pairs_out).with_name("samples.md"))
    text = samples_markdown(pairs, rejected, seed=s.seed)
    write_text(samples, text)
    tracker.log_metrics(stats)
    for path in (args.rejected_out, samples):
        tracker.log_artifact(path, "synth")
    if s.mode not in ("import", "unlabeled"):
        shutil.rmtree(_shards(args), ignore_errors=True)  # every row is in the two tables now
    log.info("synthesize: %s", stats)


def synthesis_source(s: SynthesizeSettings) -> str:
    """Where the pairs come from, as the tables name an experiment's rows: the mode and the
    generator (``partial/SmolLM2-135M-Instruct``), or the imported file(s)
    (``import/snli_1.0_test.txt``)."""
    if s.mode == "import":
        return "import/" + "+".join(Path(p).name for p in s.import_.path or ["?"])
    return f"{s.mode}/{Path(s.model).name}"


# below this share of accepted rows the stage warns: the filters rejected most of the input
ACCEPTED_FLOOR = 0.10


def _check_yield(
    pairs: pl.DataFrame, rejected: pl.DataFrame, rejected_out: str, stats: dict, tracker
) -> None:
    """Stop when nothing was accepted (the next stages would fail on an empty table), with the
    rejection reasons (of every failed attempt) counted; warn below ``ACCEPTED_FLOOR``. The
    rejected table is already written, and the shards of a generating mode are kept, so a rerun
    loses nothing."""
    never = rejected.filter(~pl.col("id").is_in(pairs["id"].implode()))  # no attempt passed
    total = pairs.height + never["id"].n_unique()
    if total and pairs.height / total >= ACCEPTED_FLOOR:
        return
    counts = rejected.group_by("reason").len().sort("len", descending=True)
    reasons = ", ".join(f"{r} {n}" for r, n in counts.iter_rows()) or "none"
    if pairs.height == 0:
        tracker.log_metrics(stats)
        raise schemas.DataError(
            f"synthesize accepted none of {total} rows (rejected by reason: {reasons}): see the "
            f"filters' settings, the prompt or the generator. The rejected rows are written to "
            f"{rejected_out} (a workflow removes a failed job's outputs; what was generated is "
            "kept for a rerun)"
        )
    log.warning(
        "synthesize accepted %d of %d rows (%.0f%%, below %.0f%%); rejected by reason: %s",
        pairs.height,
        total,
        100 * pairs.height / total,
        100 * ACCEPTED_FLOOR,
        reasons,
    )


def _shards(args: argparse.Namespace) -> str:
    return args.shards or str(Path(args.pairs_out).parent / "shards")


def _needed(corpus: str | None, mode: str) -> str:
    if not corpus:
        raise SettingError(f"synthesize: mode {mode!r} reads a corpus: give --corpus")
    return corpus


def _imported(s: SynthesizeSettings, filters: Filters, corpus: str | None, mirrors: list[str]):
    from embedlab.synth import import_pairs

    options = s.import_
    if not options.path:
        raise SettingError("synthesize: mode 'import' needs --import-path (config import.path)")
    anchors = None
    if options.match_corpus:  # the corpus sample decides which rows come in
        anchors = schemas.read(_needed(corpus, "import"), schemas.Corpus)["text"].to_list()
    if options.match_pairs:  # the anchors another run kept
        kept = schemas.read(options.match_pairs, schemas.Pairs)["anchor"].to_list()
        anchors = kept if anchors is None else sorted(set(anchors) & set(kept))
    return import_pairs(options.path, options.layout, filters, s.n_anchors, mirrors, anchors)


def _generated(s: SynthesizeSettings, args: argparse.Namespace, tracker):
    from dataclasses import asdict

    from embedlab.synth import make_backend, synthesize
    from embedlab.synth.generate import Teacher
    from embedlab.synth.prompts import PromptPool

    prompt = s.prompt or f"config/prompts/{s.mode}.yaml"
    pool = PromptPool.load(prompt)
    if pool.mode != s.mode:
        raise SettingError(f"{prompt}: a {pool.mode!r} prompt pool, mode is {s.mode!r}")
    corpus = None
    if s.mode != "scratch":
        corpus = schemas.read(_needed(args.corpus, s.mode), schemas.Corpus)
    options = {"transformers": {"device": s.device}, "openai": asdict(s.openai)}
    backend = make_backend(s.backend, s.model, args.mirror, s.seed, **options.get(s.backend, {}))
    teacher = None if s.teacher_margin is None else Teacher.load(s.teacher, args.mirror)
    pairs, rejected, stats = synthesize(
        corpus,
        backend,
        pool,
        SynthSettings.of(s),
        _shards(args),
        teacher,
        on_chunk=lambda i, f: tracker.log_metrics({"chunk_tokens_per_s": f["tokens_per_s"]}, i),
        cache=s.cache_dir,
    )
    stats["http_retries"] = float(getattr(backend, "retries", 0))
    return pairs, rejected, stats
