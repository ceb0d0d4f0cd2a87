"""The names that one stage writes and another reads, each written once.

``schemas.py`` holds the tables that pass between stages as files; ``tasks.py`` the evaluation
tasks and their columns; this module holds the rest of what passes through MLflow and file
names: the grid's run name, the tags every stage run carries, the metric names that ``tables``
reads back (mining, geometry, synthesis counts), the label of a row gathered from several
experiments, and the bins of the in-batch similarity histogram. Writer and reader import them
from here, so renaming one is one edit (``tests/test_contracts.py`` writes with each writer and
reads with its reader).

Example::

    RUN_NAME.format(miner="b3", bs=64, seed=0)        # 'b3-bs64-seed0'
    RUN.match("b3-bs64-seed0")["method"]              # 'b3'
    score_metric("STS12", "spearman")                 # 'STS12.spearman'
"""

import re

import numpy as np

# One trained student of the experiment grid: its model folder, batch file, logs and MLflow
# runs are named so (a Snakemake wildcard pattern, and str.format's).
RUN_NAME = "{miner}-bs{bs}-seed{seed}"
RUN = re.compile(r"^(?P<method>.+)-bs(?P<bs>\d+)-seed(?P<seed>\d+)$")
GRID_WILDCARDS = ("miner", "bs", "seed")

# Tags of every stage run (embedlab.tracking.stage_run)
TAG_STAGE = "stage"
TAG_RULE = "rule"
TAG_PIPELINE_RUN = "pipeline_run"
TAG_CONFIG_HASH = "config_hash"
TAG_RESOLVED = "resolved."  # + a model's name: where it was loaded from (hub: the commit)
WILDCARD = "wildcard."  # + a Snakemake wildcard's name (model, miner, bs, seed)
# The sha256 of the scores file an evaluate run wrote: the tables rule reads the runs that made
# its input files, not whichever run of a model name is newest.
TAG_SCORES_SHA256 = "scores_sha256"

# The Parquet metadata key of the teacher's ids table that holds the sha256 of its .npy matrix,
# checked by every stage that loads the matrix (the matrix has no room for a checksum itself).
NPY_SHA256_KEY = "embedlab.npy_sha256"

# The table a mine run logs (mlflow.log_table): per bin of HIST_EDGES (``low``, ``high``), the
# in-batch teacher-similarity ``density`` of the mined batches and ``random_density`` of random
# batches of the same size and seed.
IN_BATCH_SIM_TABLE = "in_batch_similarity.json"
HIST_EDGES = np.linspace(-0.3, 1.0, 53)


# Tags of a synthesize run, read by the tables: its mode and where its pairs came from
# (``partial/SmolLM2-135M-Instruct``, ``import/snli_1.0_test.txt``), which names the rows of a
# table that gathers several experiments.
TAG_SYNTH_MODE = "synthesis.mode"
TAG_SYNTH_SOURCE = "synthesis.source"

# Counts a synthesize run logs (metrics), read by the study page's synthesis table: rows read
# or generated, rows accepted, per rejection reason ``rejected_<reason>`` (over every failed
# attempt), and per attempt ``attempt<k>_<what>`` (``attempt_metric``).
SYNTH_ROWS = "rows"
SYNTH_ACCEPTED = "accepted"
REJECTED_PREFIX = "rejected_"
ATTEMPT_FIGURES = ("asked", "accepted", "tokens", "seconds")  # rows asked at attempt k, ...

# Metrics a mine run logs for its batches and for random batches of the same size and seed
# (``mine.diagnostics``), read by the mining table: hardness (mean teacher cosine of in-batch
# anchor pairs) and the estimated false-negative rate.
HARDNESS = "in_batch_sim_mean"
RANDOM_HARDNESS = "random_in_batch_sim_mean"
FALSE_NEGATIVES = "false_negative_rate"
RANDOM_FALSE_NEGATIVES = "random_false_negative_rate"

# Score rows (metric) of the geometry on STS-B dev (``evaluate.geometry``), and their columns in
# the tables
ALIGNMENT = "alignment"
UNIFORMITY = "uniformity"
GEOMETRY = (ALIGNMENT, UNIFORMITY)

# A table row gathered from one of several experiments: ``<source> · <model>``
SOURCE_SEPARATOR = " · "


def source_label(source: str, name: str) -> str:
    """The row name of ``name`` (a model, a method) from the experiment ``source`` names.

    >>> source_label("partial/SmolLM2", "b3-bs32-seed0")
    'partial/SmolLM2 · b3-bs32-seed0'
    """
    return f"{source}{SOURCE_SEPARATOR}{name}"


def split_source(label: str) -> tuple[str, str]:
    """``(source, name)`` of a row label; the source is ``""`` for a row of one experiment.

    >>> split_source("partial/SmolLM2 · b3"), split_source("b3")
    (('partial/SmolLM2', 'b3'), ('', 'b3'))
    """
    source, _, name = label.rpartition(SOURCE_SEPARATOR)
    return source, name


def rejected_metric(reason: str) -> str:
    """The synthesize run's count metric of a rejection reason (``backend_error: HTTP 400``
    counts as ``rejected_backend_error``)."""
    return REJECTED_PREFIX + reason.split(":")[0]


def attempt_metric(what: str, attempt: int) -> str:
    """The synthesize run's metric of one attempt (``what`` one of ``ATTEMPT_FIGURES``): rows
    asked at it, accepted at it, tokens generated and seconds spent in it.

    >>> attempt_metric("accepted", 2)
    'attempt2_accepted'
    """
    if what not in ATTEMPT_FIGURES:
        raise ValueError(f"{what!r} is not one of {ATTEMPT_FIGURES}")
    return f"attempt{attempt}_{what}"


def wildcard_tag(name: str) -> str:
    """The tag that records a Snakemake wildcard (``wildcard.model``)."""
    return WILDCARD + name


def score_metric(task: str, metric: str) -> str:
    """The evaluate run's metric of one score row: ``STS12.spearman``, ``Avg.spearman``."""
    return f"{task}.{metric}"
