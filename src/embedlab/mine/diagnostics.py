"""Why a batch file is good or bad: hardness, estimated false negatives, duplicates.

The figures are logged to MLflow by the mine stage, with a histogram of the in-batch teacher
similarity against random batches of the same size.
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from embedlab.atomic import write_figure
from embedlab.contracts import (
    FALSE_NEGATIVES,
    HARDNESS,
    HIST_EDGES,
    RANDOM_FALSE_NEGATIVES,
    RANDOM_HARDNESS,
)


def similarity_histogram(sim: np.ndarray) -> np.ndarray:
    """Density of ``sim`` over ``HIST_EDGES`` (values outside are clipped into the end bins)."""
    clipped = np.clip(sim, HIST_EDGES[0], HIST_EDGES[-1])
    return np.histogram(clipped, bins=HIST_EDGES, density=True)[0]


def false_negative_rate(
    anchor: np.ndarray, positive: np.ndarray, epochs: Sequence[Sequence[Sequence[int]]]
) -> float:
    """Share of in-batch (anchor i, anchor j) pairs more similar than anchor i and its positive.

    Such a j would be scored as a negative although the teacher finds it closer than the
    positive: an estimate of the false negatives the batches contain.
    """
    hits = total = 0
    pos_sim = (anchor * positive).sum(axis=1)
    for batches in epochs:
        for members in batches:
            rows = np.asarray(members)
            sim = anchor[rows] @ anchor[rows].T
            np.fill_diagonal(sim, -np.inf)
            hits += int((sim > pos_sim[rows, None]).sum())
            total += len(rows) * (len(rows) - 1)
    return hits / max(total, 1)


def duplicate_texts(texts: Sequence[str], epochs: Sequence[Sequence[Sequence[int]]]) -> int:
    """How many batches hold some text twice (must be zero)."""
    return sum(
        len({texts[r] for r in members}) < len(members) for batches in epochs for members in batches
    )


def summarize(
    anchor: np.ndarray,
    positive: np.ndarray,
    texts: Sequence[str],
    epochs: Sequence[Sequence[Sequence[int]]],
    baseline: Sequence[Sequence[Sequence[int]]],
    sim: np.ndarray,
    base: np.ndarray,
) -> dict[str, float]:
    """Hardness and false-negative figures of ``epochs`` and of the random ``baseline``;
    ``sim`` and ``base`` are their ``in_batch_similarity`` (computed once by the caller)."""
    return {
        HARDNESS: float(sim.mean()),
        "in_batch_sim_p50": float(np.quantile(sim, 0.5)),
        "in_batch_sim_p90": float(np.quantile(sim, 0.9)),
        "in_batch_sim_p99": float(np.quantile(sim, 0.99)),
        RANDOM_HARDNESS: float(base.mean()),
        "random_in_batch_sim_p90": float(np.quantile(base, 0.9)),
        FALSE_NEGATIVES: false_negative_rate(anchor, positive, epochs),
        RANDOM_FALSE_NEGATIVES: false_negative_rate(anchor, positive, baseline),
        "batches_with_duplicate_text": float(duplicate_texts(texts, epochs)),
    }


def plot_similarity(sim: np.ndarray, base: np.ndarray, title: str, out: str | Path) -> Path:
    """Histogram (PNG) of in-batch teacher similarity (``sim``) against random batches
    (``base``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=120)
    for label, values in (("random", base), (title, sim)):
        clipped = np.clip(values, HIST_EDGES[0], HIST_EDGES[-1])
        ax.hist(clipped, bins=HIST_EDGES, alpha=0.55, density=True, label=label)
    ax.set_xlabel("teacher cosine similarity of in-batch pairs")
    ax.set_ylabel("density")
    ax.legend()
    fig.tight_layout()
    write_figure(fig, out)
    plt.close(fig)
    return Path(out)
