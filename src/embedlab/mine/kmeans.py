"""k-means batches (ClusterNS-style): each batch is drawn from one region of the teacher space.

k-means (FAISS's, threaded; spherical, as the embeddings are unit vectors) clusters the
teacher embeddings once; every epoch shuffles the clusters and their members, lays them end to
end and cuts full batches, so most in-batch negatives share a cluster.

Example::

    epochs, _, stats = kmeans_batches(emb, texts, batch_size=32, epochs=2, seed=0)
"""

from collections.abc import Sequence

import numpy as np

from embedlab.errors import SettingError
from embedlab.mine.batches import check_size, fill_batches


def _kmeans(data: np.ndarray, k: int, seed: int, iterations: int) -> np.ndarray:
    """Each row's cluster under FAISS's k-means (all cores; every row trains)."""
    import faiss

    if k == 1:
        return np.zeros(data.shape[0], dtype=np.int64)
    model = faiss.Kmeans(
        data.shape[1],
        k,
        niter=iterations,
        seed=seed,
        spherical=True,
        max_points_per_centroid=data.shape[0],  # no subsampling
        min_points_per_centroid=1,  # k = N / B leaves few points per centroid by design
    )
    model.train(data)
    return model.index.search(data, 1)[1][:, 0].astype(np.int64)


def kmeans_batches(
    emb: np.ndarray,
    texts: Sequence[str] | None,
    batch_size: int,
    epochs: int,
    seed: int,
    n_clusters: int | None = None,
    iterations: int = 20,
    **_: object,
) -> tuple[list[list[list[int]]], dict[int, list[int]], dict[str, float]]:
    """Batches cut from k-means clusters; ``n_clusters`` defaults to N // batch_size."""
    n = emb.shape[0]
    check_size(n, batch_size)
    k = n_clusters or max(1, n // batch_size)
    if not 1 <= k <= n:
        raise SettingError(f"n_clusters={k} must be between 1 and N={n}")
    labels = _kmeans(np.ascontiguousarray(emb, dtype=np.float32), k, seed, iterations)
    members = [np.flatnonzero(labels == c) for c in range(k)]
    rng = np.random.default_rng(seed)
    out = []
    for _epoch in range(epochs):
        order = [int(r) for c in rng.permutation(k) for r in rng.permutation(members[c])]
        out.append(fill_batches(order, texts, batch_size))
    sizes = np.bincount(labels, minlength=k)
    stats = {
        "clusters": float(k),
        "cluster_size_min": float(sizes.min()),
        "cluster_size_max": float(sizes.max()),
        "dropped_per_epoch": float(n - len(out[0]) * batch_size),
    }
    return out, {}, stats
