"""Pair classification: does a pair's cosine similarity rank the positive pairs first?

A task is sentence pairs with a binary label; the score is the average precision of the
pairs ranked by cosine similarity (MTEB's main pair-classification score), so no threshold is
tuned on the test set. ``sick_entailment`` builds one from the SICK mirror, offline: a pair is
positive when its gold entailment judgment is ENTAILMENT, negative when NEUTRAL or
CONTRADICTION. SICK's contradictions are near-copies of their premise ("A man is playing" /
"There is no man playing"), the pairs an encoder trained with hard negatives should push
apart, which STS relatedness (SICK-R, the same sentences) does not reward.

Example::

    task = PAIR_TASKS["sick"](["../shared/data"])
    scores = evaluate_pairs(model, task)   # rows of the Scores schema: metric "ap"
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from sentence_transformers import SentenceTransformer

from embedlab.encode import encode
from embedlab.schemas import DataError, Scores, polars_schema
from embedlab.tasks import SICK_ENTAILMENT, task_name
from embedlab.text import squash


@dataclass(frozen=True)
class PairTask:
    name: str
    s1: list[str]
    s2: list[str]
    labels: np.ndarray  # 1: positive pair, 0: negative


SICK_LABELS = {"ENTAILMENT": 1, "NEUTRAL": 0, "CONTRADICTION": 0}


def sick_entailment(mirrors: Sequence[str | Path] = (), split: str = "test") -> PairTask:
    """SICK's pairs of one split, labelled 1 where the gold judgment is ENTAILMENT."""
    from embedlab.resolve import resolve_file
    from embedlab.sts_data import SICK_FILES, STS_TASKS

    path = resolve_file(STS_TASKS["SICKRelatedness"][0], mirrors) / SICK_FILES[split]
    s1, s2, labels = [], [], []
    lines = path.read_text(encoding="utf-8").splitlines()
    for lineno, line in enumerate(lines[1:], start=2):  # pair_ID, A, B, relatedness, judgment
        fields = line.split("\t")
        if len(fields) < 5 or fields[4] not in SICK_LABELS:
            got = fields[4] if len(fields) >= 5 else f"{len(fields)} fields"
            raise DataError(
                f"{path}: line {lineno}: entailment judgment {got!r}, expected one of "
                f"{sorted(SICK_LABELS)}"
            )
        s1.append(squash(fields[1]))
        s2.append(squash(fields[2]))
        labels.append(SICK_LABELS[fields[4]])
    return PairTask(task_name(SICK_ENTAILMENT, split), s1, s2, np.asarray(labels))


# the tasks ``evaluate.pairs`` builds from the mirror, by name
PAIR_TASKS = {"sick": sick_entailment}


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision of ``labels`` ranked by ``scores`` (descending); tied scores share
    one precision (scikit-learn's definition).

    >>> round(average_precision(np.array([0.9, 0.8, 0.1]), np.array([1, 0, 1])), 4)
    0.8333
    """
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(labels, scores))


def evaluate_pairs(
    model: SentenceTransformer, task: PairTask, batch_size: int = 64
) -> pl.DataFrame:
    """Cosine similarity of each pair, average precision x 100 as a Scores row (metric ``ap``)."""
    a = encode(model, task.s1, batch_size)  # unit vectors: the dot product is the cosine
    b = encode(model, task.s2, batch_size)
    ap = average_precision((a * b).sum(axis=1), task.labels)
    row = {
        "task": task.name,
        "split": "test",
        "metric": "ap",
        "value": ap * 100,
        "n": task.labels.size,
    }
    return pl.DataFrame([row], schema=polars_schema(Scores))
