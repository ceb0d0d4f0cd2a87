"""Top-k neighbours by cosine similarity without an N x N matrix.

Backends:
- ``exact``: blocked matrix products in torch, O(block x N) memory; exact, deterministic.
- ``faiss-exact``: FAISS flat inner-product index; exact, fast for medium N.
- ``faiss-ivf``: FAISS inverted-file index (``nlist`` ~ 4 sqrt(N) lists, ``nprobe`` of them
  searched); approximate, for hundreds of thousands to millions of examples.
- ``cells``: the examples cut into ~2 sqrt(N) k-means cells (FAISS's k-means, twice IVF's
  list size); the rows of a cell are searched exactly, in one matrix product, among the rows
  of the ``nprobe / 2`` cells whose centroids are nearest its centroid (the cell's own first),
  so it scans as many rows per query as ``faiss-ivf``. Approximate, and coarser than IVF
  (a row's candidates follow its cell, not the row itself: lower recall at equal work), but
  dense matrix products instead of one query at a time: for a million rows on a CPU
  (docs/mining-scale.md).
- ``auto``: faiss-exact up to 50,000 rows (faster than the torch blocks here), faiss-ivf above.

>>> idx, sim = topk_neighbours(np.eye(3, dtype=np.float32), k=2)
>>> idx.shape
(3, 2)
"""

import numpy as np
from tqdm.auto import tqdm

from embedlab.errors import SettingError

EXACT_LIMIT = 50_000


def _exact(data: np.ndarray, k: int, block: int) -> tuple[np.ndarray, np.ndarray]:
    import torch  # here, not above: the FAISS backends run without it (a mine job starts faster)

    n = data.shape[0]
    tensor = torch.from_numpy(data)
    indices = np.empty((n, k), dtype=np.int64)
    sims = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, block):
        stop = min(start + block, n)
        scores = tensor[start:stop] @ tensor.T
        scores[torch.arange(stop - start), torch.arange(start, stop)] = -torch.inf  # not itself
        top = torch.topk(scores, k, dim=1, sorted=True)
        indices[start:stop] = top.indices.numpy()
        sims[start:stop] = top.values.numpy()
    return indices, sims


def without_self(
    indices: np.ndarray, sims: np.ndarray, rows: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """A search of ``k + 1`` neighbours for ``rows`` without each row itself (normally first):
    the ``k`` best others, in order."""
    order = np.argsort(indices == rows[:, None], axis=1, kind="stable")[:, :k]
    return np.take_along_axis(indices, order, 1), np.take_along_axis(sims, order, 1)


def _faiss(
    data: np.ndarray, k: int, ivf: bool, nprobe: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    n, d = data.shape
    if ivf:
        nlist = max(1, min(n // 39, int(4 * np.sqrt(n))))  # FAISS wants >= 39 points per list
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        sample = data[rng.choice(n, size=min(n, 256 * nlist), replace=False)]
        index.cp.seed = seed
        index.train(sample)
        index.nprobe = min(nprobe, nlist)
    else:
        index = faiss.IndexFlatIP(d)
    index.add(data)
    indices, sims = without_self(*index.search(data, k + 1)[::-1], np.arange(n), k)
    missing = indices < 0  # an IVF probe can return fewer than k hits
    sims[missing] = -np.inf
    return indices.astype(np.int64), sims.astype(np.float32)


def _cells(data: np.ndarray, k: int, nprobe: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    import faiss
    import torch

    n, d = data.shape
    nlist = max(1, min(n // 64, round(2 * np.sqrt(n))))  # k-means wants >= 39 rows per cell
    # 40 rows per centroid: FAISS's least without a warning; the k-means is only a coarse cut
    sample = data[np.random.default_rng(seed).choice(n, size=min(n, 40 * nlist), replace=False)]
    kmeans = faiss.Kmeans(d, nlist, niter=10, seed=seed, spherical=True, verbose=False)
    kmeans.train(sample)
    label = kmeans.index.search(data, 1)[1].ravel()
    probes = kmeans.index.search(kmeans.centroids, min(-(-nprobe // 2), nlist))[1]
    order = np.argsort(label, kind="stable")
    starts = np.searchsorted(label[order], np.arange(nlist + 1))
    members = [order[starts[c] : starts[c + 1]] for c in range(nlist)]
    tensor = torch.from_numpy(data)
    # int32 ids (a million rows, 130 neighbours: 0.5 GB, not 1 GB)
    indices = np.full((n, k), -1, dtype=np.int32 if n < 2**31 else np.int64)
    sims = np.full((n, k), -np.inf, dtype=np.float32)
    for c in tqdm(range(nlist), desc="knn cells", unit="cell", disable=nlist < 100):
        rows = members[c]
        if not len(rows):
            continue
        # the cell's own rows first, so that row i of the cell is column i of the pool
        pool = np.concatenate([rows, *(members[p] for p in probes[c] if p not in (c, -1))])
        scores = tensor[torch.from_numpy(rows)] @ tensor[torch.from_numpy(pool)].T
        scores[torch.arange(len(rows)), torch.arange(len(rows))] = -torch.inf  # not itself
        values, at = torch.topk(scores, min(k, len(pool) - 1), dim=1, sorted=True)
        indices[rows, : at.shape[1]] = pool[at.numpy()]
        sims[rows, : at.shape[1]] = values.numpy()
    return indices, sims


def stable_ranks(
    indices: np.ndarray, sims: np.ndarray, k: int, decimals: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best of each row's candidates ranked by similarity rounded to ``decimals``,
    ties broken by the smaller index: float noise below the rounding (another thread count,
    another BLAS) leaves the ranks as they are, except for a similarity within the noise of a
    rounding boundary whose neighbour in rank falls on the other side (measured in
    docs/studies.md). Missing candidates (-1, -inf) rank last.

    >>> idx = np.array([[5, 2, 9]]); sim = np.array([[0.70004, 0.70001, 0.1]], np.float32)
    >>> stable_ranks(idx, sim, 2, decimals=4)[0]
    array([[2, 5]])
    """
    rounded = np.round(sims.astype(np.float64), decimals)
    order = np.lexsort((indices, -rounded), axis=1)[:, :k]
    return np.take_along_axis(indices, order, 1), np.take_along_axis(sims, order, 1)


# candidates searched beyond k when ranks are rounded: a tie at the k-th place is broken by
# index among all the tied rows, not only those the search happened to return first
ROUNDING_SLACK = 8


def topk_neighbours(
    emb: np.ndarray,
    k: int,
    backend: str = "auto",
    block: int = 4096,
    nprobe: int = 16,
    seed: int = 0,
    decimals: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """For each row of L2-normalised ``emb``, the ``k`` most similar other rows, best first.

    Returns (indices [N, k], int64, or int32 from ``cells``; similarities float32 [N, k]).
    Approximate backends may return -1 with similarity -inf where fewer than k neighbours were
    found. With ``decimals``, ranks are those of the similarities rounded so, ties broken by
    index (:func:`stable_ranks`): the same neighbours for embeddings equal up to float noise.
    """
    n = emb.shape[0]
    if not 0 < k < n:
        raise SettingError(f"k={k} must be between 1 and N-1={n - 1}")
    if decimals is not None:
        wider = min(k + ROUNDING_SLACK, n - 1)
        found = topk_neighbours(emb, wider, backend, block, nprobe, seed)
        return stable_ranks(*found, k, decimals)
    data = np.ascontiguousarray(emb, dtype=np.float32)
    if backend == "auto":
        backend = "faiss-exact" if n <= EXACT_LIMIT else "faiss-ivf"
    if backend == "exact":
        return _exact(data, k, block)
    if backend in ("faiss-exact", "faiss-ivf"):
        return _faiss(data, k, backend == "faiss-ivf", nprobe, seed)
    if backend == "cells":
        return _cells(data, k, nprobe, seed)
    raise SettingError(
        f"unknown knn backend {backend!r}; expected auto, exact, faiss-exact, faiss-ivf, cells"
    )
