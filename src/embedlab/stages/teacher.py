"""``embedlab teacher``: teacher embeddings of every text of the pairs (config ``teacher``)."""

import argparse
import time

from embedlab import schemas
from embedlab.settings import add_arguments as add_settings
from embedlab.settings import from_args
from embedlab.settings.teacher import TeacherSettings
from embedlab.tracking import StageRun

HELP = "teacher embeddings of the anchors, positives and hard negatives"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pairs", required=True, help="the synthesize stage's pairs.parquet")
    parser.add_argument("--out", required=True, help=".npy file")
    parser.add_argument("--ids-out", required=True, help="parquet of id -> row")
    add_settings(parser, TeacherSettings)


def run(args: argparse.Namespace, tracker: StageRun) -> None:
    from embedlab.embeddings import save
    from embedlab.encode import load_encoder
    from embedlab.resolve import model_identity
    from embedlab.teacher.embed import embed_pairs

    s: TeacherSettings = from_args(TeacherSettings, args)
    pairs = schemas.read(args.pairs, schemas.Pairs)
    model = load_encoder(s.model, args.mirror)
    started = time.perf_counter()
    identity = model_identity(s.model, args.mirror) if s.cache_dir else s.model
    emb, ids, hit = embed_pairs(model, pairs, s.batch_size, s.cache_dir, identity)
    seconds = time.perf_counter() - started
    save(emb.astype(s.dtype), ids, args.out, args.ids_out)
    tracker.log_metrics(
        {"texts": ids.height, "cache_hit": float(hit)}
        | ({} if hit else {"texts_per_s": ids.height / seconds})
    )
