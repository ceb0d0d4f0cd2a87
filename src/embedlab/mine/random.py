"""Random batches: the baseline every miner is compared with."""

from collections.abc import Sequence

import numpy as np


def random_batches(
    emb: np.ndarray, texts: Sequence[str], batch_size: int, epochs: int, seed: int, **_: object
) -> tuple[list[list[list[int]]], dict[int, list[int]], dict[str, float]]:
    """Shuffle per epoch and cut into full batches (the remainder of an epoch is dropped).

    Texts are unique by construction of the corpus, so no batch holds a duplicate text.
    Returns (epochs -> batches -> rows, hard negatives per row (none), stats).
    """
    n = emb.shape[0]
    _check_size(n, batch_size)
    rng = np.random.default_rng(seed)
    out = []
    for _epoch in range(epochs):
        order = rng.permutation(n)
        full = n // batch_size * batch_size
        out.append([order[i : i + batch_size].tolist() for i in range(0, full, batch_size)])
    return out, {}, {"dropped_per_epoch": float(n % batch_size)}


def _check_size(n: int, batch_size: int) -> None:
    if n < batch_size:
        raise ValueError(
            f"only {n} examples for batch size {batch_size}: synthesize more anchors "
            "(synthesize.n_anchors) or lower grid.batch_sizes"
        )
