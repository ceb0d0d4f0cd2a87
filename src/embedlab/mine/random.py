"""Random batches: the baseline every miner is compared with."""

from collections.abc import Sequence

import numpy as np

from embedlab.mine.batches import check_size, fill_batches


def random_batches(
    emb: np.ndarray,
    texts: Sequence[str] | None,
    batch_size: int,
    epochs: int,
    seed: int,
    **_: object,
) -> tuple[list[list[list[int]]], dict[int, list[int]], dict[str, float]]:
    """Shuffle per epoch and cut into full batches with no text twice in a batch.

    Returns (epochs -> batches -> rows, hard negatives per row (none), stats).
    """
    n = emb.shape[0]
    check_size(n, batch_size)
    rng = np.random.default_rng(seed)
    out = [fill_batches(rng.permutation(n).tolist(), texts, batch_size) for _ in range(epochs)]
    return out, {}, {"dropped_per_epoch": float(n - len(out[0]) * batch_size)}
