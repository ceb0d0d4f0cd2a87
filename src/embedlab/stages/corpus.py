"""``embedlab corpus``: collect, check and deduplicate sentences (config section ``corpus``)."""

import argparse
import logging

from embedlab import schemas
from embedlab.corpus import Source, build_corpus
from embedlab.settings import add_arguments as add_settings
from embedlab.settings import from_args
from embedlab.settings.corpus import CorpusSettings
from embedlab.tracking import StageRun

HELP = "collect, check and deduplicate sentences"
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="corpus.parquet to write")
    add_settings(parser, CorpusSettings)


def run(args: argparse.Namespace, tracker: StageRun) -> None:
    settings: CorpusSettings = from_args(CorpusSettings, args)
    corpus, counts = build_corpus(
        [Source(**s) for s in settings.sources],
        args.mirror,
        settings.max_sentences,
        settings.min_chars,
        settings.max_chars,
        settings.seed,
    )
    schemas.write(corpus, args.out, schemas.Corpus)
    tracker.log_metrics(counts)
    log.info("corpus: %s", counts)
