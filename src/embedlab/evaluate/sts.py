"""STS evaluation as SimCSE/SentEval report it ("all" setting).

STS12-16: every subset of a year pooled into one list, one Spearman correlation of cosine
similarity against gold over it. STS-B and SICK-R: the test split. Scores are Spearman x 100.
The data are read by ``embedlab.sts_data``.

Example::

    pairs = load_sts("STSBenchmark", mirrors=["../shared/data"])
    scores = evaluate_sts(model, [pairs])
"""

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import polars as pl
from scipy.stats import spearmanr
from sentence_transformers import SentenceTransformer

from embedlab.encode import Tokenized, encode, tokenize
from embedlab.schemas import Scores, polars_schema
from embedlab.sts_data import StsPairs, load_sts
from embedlab.tasks import AVERAGE


def dev_scorer(mirrors: Sequence[str | Path] = ()) -> Callable[[SentenceTransformer], float]:
    """The STS-B dev Spearman x 100 of a model, as a function: what training selects on.

    Example::

        train(student, pairs, batches, config, score_dev=dev_scorer(["../shared/data"]))
    """
    dev = load_sts("STSBenchmark", mirrors, split="dev")
    held: tuple[SentenceTransformer, Tokenized] | None = None  # the model is held: ids stay unique

    def score(model: SentenceTransformer) -> float:
        nonlocal held
        if held is None or held[0] is not model:  # tokenized once per model, not per call
            held = (model, tokenize(model, sentences([dev])))
        return float(evaluate_sts(model, [dev], progress=False, tokenized=held[1])["value"][0])

    return score


def sentences(tasks: Sequence[StsPairs]) -> list[str]:
    """The distinct sentences of ``tasks``, sorted: what ``evaluate_sts`` encodes."""
    return sorted({s for t in tasks for s in (*t.s1, *t.s2)})


def evaluate_sts(
    model: SentenceTransformer,
    tasks: Sequence[StsPairs],
    batch_size: int = 64,
    progress: bool = True,
    tokenized: Tokenized | None = None,
) -> pl.DataFrame:
    """Spearman x 100 of cosine similarity per task in both aggregations papers report.

    metric "spearman": SentEval "all" as SimCSE reports it (the subsets of a year pooled into
    one list); metric "spearman_wmean": SentEval's "wmean" (one correlation per subset,
    averaged with subset sizes as weights; a task without subsets has the same value in both).
    Then "Avg" rows: the plain mean over tasks of each metric (one task: its own value). All
    sentences of all tasks are deduplicated and encoded once, sorted by length. Returns rows
    (task, split, metric, value, n) matching the ``Scores`` schema, a task's "spearman" row
    first. ``tokenized``: those sentences (``sentences(tasks)``) already tokenized
    (``embedlab.encode.tokenize``).
    """
    unique = sentences(tasks)
    index = {s: i for i, s in enumerate(unique)}
    emb = encode(model, unique, batch_size, progress=progress, desc="evaluate", tokenized=tokenized)
    rows = []
    for t in tasks:
        a = emb[[index[s] for s in t.s1]]
        b = emb[[index[s] for s in t.s2]]
        cosine = (a * b).sum(axis=1)  # rows are L2-normalised
        pooled = float(spearmanr(cosine, t.gold).statistic * 100)
        if t.subset is None:
            wmean = pooled
        else:
            labels = np.asarray(t.subset)
            parts = [(labels == name) for name in sorted(set(t.subset))]
            rhos = [spearmanr(cosine[m], t.gold[m]).statistic * 100 for m in parts]
            wmean = float(np.average(rhos, weights=[m.sum() for m in parts]))
        n = len(t.gold)
        rows.append(
            {"task": t.task, "split": t.split, "metric": "spearman", "value": pooled, "n": n}
        )
        rows.append(
            {"task": t.task, "split": t.split, "metric": "spearman_wmean", "value": wmean, "n": n}
        )
    # every task list has an Avg (one task's is that task): the tables compare methods on it
    splits = {t.split for t in tasks}
    split = splits.pop() if len(splits) == 1 else "mixed"  # dev tasks average as dev
    for metric in ("spearman", "spearman_wmean"):
        chosen = [r for r in rows if r["metric"] == metric]
        rows.append(
            {
                "task": AVERAGE,
                "split": split,
                "metric": metric,
                "value": float(np.mean([r["value"] for r in chosen])),
                "n": sum(r["n"] for r in chosen),
            }
        )
    return pl.DataFrame(rows, schema=polars_schema(Scores))
