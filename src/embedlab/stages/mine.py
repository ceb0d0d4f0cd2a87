"""``embedlab mine``: the batch file (training order) of one miner, with its diagnostics.

Config section ``mine``: ``epochs``, and one section of options per miner, passed as
``--options`` JSON; the options' defaults are the miner function's keyword defaults
(``embedlab.mine.b3.b3_batches`` ...).
"""

import argparse
import logging

import numpy as np

from embedlab import schemas
from embedlab.contracts import HIST_EDGES, IN_BATCH_SIM_TABLE
from embedlab.errors import SettingError
from embedlab.settings import add_arguments as add_settings
from embedlab.settings import from_args
from embedlab.settings.mine import MineSettings
from embedlab.stages import split_units
from embedlab.tracking import StageRun

HELP = "build the batch file (training order)"
log = logging.getLogger(__name__)


# the random stream of the per-seed subsample, apart from every miner's own stream of the seed
SUBSAMPLE_STREAM = 0x5EED


def subsample_rows(n: int, share: float, seed: int) -> np.ndarray:
    """The rows (sorted) of a seed's subsample of ``n`` pairs: ``round(share * n)`` of them,
    drawn from the seed alone, so that every miner of one seed trains on the same rows and
    each seed on others (the training set resampled per seed, paired across miners).

    >>> subsample_rows(10, 0.5, seed=0).tolist() == subsample_rows(10, 0.5, seed=0).tolist()
    True
    >>> len(subsample_rows(10, 0.5, seed=1)), subsample_rows(10, 1.0, seed=1).tolist()[:3]
    (5, [0, 1, 2])
    """
    if not 0 < share <= 1:
        raise SettingError(f"mine.subsample = {share} must be in (0, 1]")
    if share == 1:
        return np.arange(n)
    rng = np.random.default_rng([seed, SUBSAMPLE_STREAM])
    return np.sort(rng.choice(n, size=max(1, round(share * n)), replace=False))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pairs", required=True, help="the synthesize stage's pairs.parquet")
    parser.add_argument("--embeddings", required=True, help="the teacher's .npy")
    parser.add_argument("--ids", required=True, help="the teacher's ids parquet")
    parser.add_argument("--out", required=True, nargs="+", help="batches.parquet, per seed")
    parser.add_argument(
        "--plot", nargs="+", help="PNG of in-batch similarity against random batches, per seed"
    )
    add_settings(parser, MineSettings)


def units(args: argparse.Namespace) -> list[argparse.Namespace]:
    """One unit per seed (tagged ``seed``), all in one process; a unit's ``seed`` is a list of
    one, as the settings field is.

    Example: ``embedlab mine --miner b3 ... --seed 0 1 --out b0.parquet b1.parquet``
    """
    per_seed = {"seed": [[k] for k in args.seed], "out": args.out}
    per_seed["plot"] = args.plot or [None] * len(args.out)
    return split_units(args, per_seed, ("seed", args.seed))


def run(args: argparse.Namespace, tracker: StageRun) -> None:
    from embedlab.embeddings import TeacherView
    from embedlab.mine import MINERS
    from embedlab.mine.batches import batch_table, in_batch_similarity
    from embedlab.mine.diagnostics import plot_similarity, similarity_histogram, summarize

    s: MineSettings = from_args(MineSettings, args)
    if len(s.seed) != 1:
        raise SettingError(f"run() mines one seed at a time, got {s.seed} (see units())")
    seed = s.seed[0]
    if s.miner not in MINERS:
        raise SettingError(f"unknown miner {s.miner!r}; known: {sorted(MINERS)}")
    pairs = schemas.read(args.pairs, schemas.Pairs)
    rows = subsample_rows(pairs.height, s.subsample, seed)
    pairs = pairs[rows]
    view = TeacherView.load(args.embeddings, args.ids, pairs)
    texts = pairs["anchor"].to_list()
    epochs, negatives, stats = MINERS[s.miner](
        view.anchor, texts, s.batch_size, s.epochs, seed, positives=view.positive, **s.options
    )
    table = batch_table(epochs, pairs["id"].to_list(), negatives)
    schemas.write(table, args.out, schemas.Batches)
    # the diagnostics compare with random batches of the same size and seed
    baseline, _, _ = MINERS["random"](view.anchor, texts, s.batch_size, s.epochs, seed)
    sim = in_batch_similarity(view.anchor, epochs)
    base = in_batch_similarity(view.anchor, baseline)
    stats |= summarize(view.anchor, view.positive, texts, epochs, baseline, sim, base)
    stats["batches"] = float(table.select("epoch", "batch").unique().height)
    stats["pairs_mined"] = float(pairs.height)
    tracker.log_metrics(stats)
    # both histograms as one table, drawn across miners by `tables`
    table = {
        "low": HIST_EDGES[:-1].tolist(),
        "high": HIST_EDGES[1:].tolist(),
        "density": similarity_histogram(sim).tolist(),
        "random_density": similarity_histogram(base).tolist(),
    }
    tracker.log_table(table, IN_BATCH_SIM_TABLE)
    if args.plot:
        plot_similarity(sim, base, s.miner, args.plot)
        tracker.log_artifact(args.plot, "mine")
    log.info("mine %s: %s", s.miner, stats)
