"""Per-example hard negatives with a margin to the positive, in random batches.

The idea of sentence-transformers' mine_hard_negatives and NV-Retriever's positive-aware
mining: take the teacher's neighbours of each anchor at ranks [p, p+m), drop those too close
to the anchor's own positive similarity (likely false negatives), keep the K most similar.

- ``margin_type: absolute``: keep a negative when sim(a, n) < sim(a, pos) - margin.
- ``margin_type: relative``: keep it when sim(a, n) < sim(a, pos) * (1 - margin)
  (NV-Retriever's TopK-PercPos with margin 0.05 keeps negatives under 95% of the positive).

Example::

    epochs, negatives, stats = hardneg_batches(emb, texts, 32, 2, 0, positives=pos_emb)
"""

from collections.abc import Sequence

import numpy as np

from embedlab.errors import SettingError
from embedlab.mine.knn import topk_neighbours
from embedlab.mine.random import random_batches


def hardneg_batches(
    emb: np.ndarray,
    texts: Sequence[str] | None,
    batch_size: int,
    epochs: int,
    seed: int,
    positives: np.ndarray | None = None,
    p: int = 0,
    m: int = 32,
    hard_negatives: int = 1,
    margin: float = 0.05,
    margin_type: str = "relative",
    knn: str = "auto",
    nprobe: int = 16,
    **_: object,
) -> tuple[list[list[list[int]]], dict[int, list[int]], dict[str, float]]:
    """Random batches plus, for each row, up to ``hard_negatives`` mined negatives."""
    if positives is None:
        raise SettingError("the hardneg miner needs the teacher embeddings of the positives")
    if margin_type not in ("absolute", "relative"):
        raise SettingError(f"margin_type={margin_type!r}; expected 'absolute' or 'relative'")
    n = emb.shape[0]
    if p + m >= n:
        raise SettingError(
            f"rank window p+m={p + m} must be below N={n}; lower mine.hardneg.p or m"
        )
    neighbours, sims = topk_neighbours(emb, p + m, backend=knn, nprobe=nprobe, seed=seed)
    neighbours, sims = neighbours[:, p:], sims[:, p:]
    pos_sim = (emb * positives).sum(axis=1, keepdims=True)
    limit = pos_sim - margin if margin_type == "absolute" else pos_sim * (1 - margin)
    keep = (sims < limit) & (neighbours >= 0)  # an approximate search may return fewer than k
    negatives = {i: neighbours[i, keep[i]][:hard_negatives].tolist() for i in range(n)}
    epochs_out, _, stats = random_batches(emb, texts, batch_size, epochs, seed)
    found = np.array([len(v) for v in negatives.values()])
    stats |= {
        "hard_negatives_mean": float(found.mean()),
        "without_hard_negative": float((found == 0).sum()),
        "removed_by_margin": float((~keep).sum()),
    }
    return epochs_out, negatives, stats
