"""Shared pieces of the miners: cutting an order into batches, and the batch-file table."""

from collections import deque
from collections.abc import Sequence

import numpy as np
import polars as pl

from embedlab.errors import SettingError
from embedlab.schemas import Batches, polars_schema


def check_size(n: int, batch_size: int) -> None:
    if n < batch_size:
        raise SettingError(
            f"only {n} examples for batch size {batch_size}: synthesize more anchors "
            "(synthesize.n_anchors) or lower grid.batch_sizes"
        )


def fill_batches(
    order: Sequence[int], texts: Sequence[str] | None, batch_size: int
) -> list[list[int]]:
    """Cut ``order`` into full batches in which no text occurs twice.

    A row whose text is already in the open batch waits for the next batch (so duplicates of a
    text land in different batches); rows left when no full batch can be made are dropped.

    >>> fill_batches([0, 1, 2, 3], ["a", "a", "b", "c"], 2)
    [[0, 2], [1, 3]]
    """
    queue, waiting = deque(order), []
    batches: list[list[int]] = []
    current: list[int] = []
    seen: set[str | int] = set()
    while queue:
        row = queue.popleft()
        key = texts[row] if texts is not None else row
        if key in seen:
            waiting.append(row)
            continue
        current.append(row)
        seen.add(key)
        if len(current) == batch_size:
            batches.append(current)
            current, seen = [], set()
            queue.extendleft(reversed(waiting))
            waiting = []
    return batches


def batch_table(
    epochs: Sequence[Sequence[Sequence[int]]],
    ids: Sequence[str],
    hard_negatives: dict[int, list[int]] | None = None,
) -> pl.DataFrame:
    """Rows ``epoch, batch, position, id, hard_negative_ids`` in training order."""
    rows = {"epoch": [], "batch": [], "position": [], "id": [], "hard_negative_ids": []}
    hard_negatives = hard_negatives or {}
    for e, batches in enumerate(epochs):
        for b, members in enumerate(batches):
            for p, row in enumerate(members):
                rows["epoch"].append(e)
                rows["batch"].append(b)
                rows["position"].append(p)
                rows["id"].append(ids[row])
                rows["hard_negative_ids"].append([ids[j] for j in hard_negatives.get(row, [])])
    return pl.DataFrame(rows, schema=polars_schema(Batches))


def in_batch_similarity(emb: np.ndarray, epochs: Sequence[Sequence[Sequence[int]]]) -> np.ndarray:
    """Teacher cosine similarity of every pair of distinct examples that share a batch."""
    values = []
    for batches in epochs:
        for members in batches:
            block = emb[list(members)]
            sim = block @ block.T
            values.append(sim[np.triu_indices(len(members), k=1)])
    return np.concatenate(values) if values else np.zeros(0, dtype=np.float32)
