"""Turning a list of batches (lists of row numbers) into the batch-file table."""

from collections.abc import Sequence

import numpy as np
import polars as pl


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
    return pl.DataFrame(
        rows,
        schema={
            "epoch": pl.Int64,
            "batch": pl.Int64,
            "position": pl.Int64,
            "id": pl.String,
            "hard_negative_ids": pl.List(pl.String),
        },
    )


def in_batch_similarity(emb: np.ndarray, epochs: Sequence[Sequence[Sequence[int]]]) -> np.ndarray:
    """Teacher cosine similarity of every pair of distinct examples that share a batch."""
    values = []
    for batches in epochs:
        for members in batches:
            block = emb[list(members)]
            sim = block @ block.T
            values.append(sim[np.triu_indices(len(members), k=1)])
    return np.concatenate(values) if values else np.zeros(0, dtype=np.float32)
