"""B3 batches ("Breaking the Batch Barrier"): hard in-batch negatives from a teacher's ranking.

1. For each example, the teacher's neighbours at ranks [p, p+m) are candidate strong negatives
   (the top p are skipped as likely false negatives). Blocked top-k: no N x N matrix.
2. A sparse graph keeps the mutual candidate edges.
3. METIS (pymetis) cuts it into ceil(N / c) parts (or Louvain finds communities); parts are
   then made exactly size c (members with the fewest edges inside an oversized part are
   trimmed; short parts are filled with them).
4. Each epoch shuffles the clusters and a batch is B / c whole clusters.
5. Each example gets K hard negatives drawn from its cluster's candidate lists, excluding the
   cluster's members and anything in a member's top p.

Example::

    epochs, negs, stats = b3_batches(emb, texts, batch_size=32, epochs=2, seed=0,
                                     p=2, m=16, cluster_size=8)
"""

import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np

from embedlab.errors import SettingError
from embedlab.mine.batches import check_size
from embedlab.mine.knn import topk_neighbours


def mutual_graph(candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The graph with an edge i-j when each is in the other's candidates, in CSR form.

    Returns (xadj, adjncy) as METIS takes them: the neighbours of i are
    ``adjncy[xadj[i]:xadj[i + 1]]``, sorted. The candidate lists become a sparse boolean
    matrix A (one row sort, no global sort) and the mutual graph is A ∧ Aᵀ, which scipy
    computes in C in O(N k): at a million rows and k = 100, seconds and 32-bit indices.
    Missing candidates (-1, from an approximate search) are left out.

    >>> xadj, adjncy = mutual_graph(np.array([[1, 2], [0, 2], [1, 0]]))
    >>> [adjncy[xadj[i] : xadj[i + 1]].tolist() for i in range(3)]
    [[1, 2], [0, 2], [0, 1]]
    """
    import scipy.sparse

    n, k = candidates.shape
    found = candidates >= 0
    cols = np.where(found, candidates, n).astype(np.int32 if n < 2**31 else np.int64, copy=False)
    cols.sort(axis=1)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(found.sum(1), out=indptr[1:])
    cols = cols[cols < n] if not found.all() else cols.ravel()  # row-sorted, -1s dropped
    del found
    a = scipy.sparse.csr_matrix((np.ones(len(cols), dtype=bool), cols, indptr), shape=(n, n))
    a.has_sorted_indices = True
    mutual = a.multiply(a.T.tocsr()).tocsr()
    mutual.sort_indices()
    return mutual.indptr, mutual.indices  # int32 below 2**31 edges: what METIS takes


def fixed_size_clusters(
    parts: np.ndarray, xadj: np.ndarray, adjncy: np.ndarray, size: int
) -> tuple[list[list[int]], dict[str, float]]:
    """Make METIS parts exactly ``size`` long; leftover examples (< size) are left out.

    Within a part, the nodes with the most neighbours inside it come first (ties by id); full
    clusters are cut from the front, and the rest of every part is pooled and cut in order.
    """
    n = len(parts)
    inside = parts[adjncy] == np.repeat(parts, np.diff(xadj))  # edge i-j within i's part
    count = np.concatenate([[0], np.cumsum(inside, dtype=np.int64)])
    degree = count[xadj[1:]] - count[xadj[:-1]]  # neighbours inside its part, per node
    del inside, count
    order = np.lexsort((np.arange(n), -degree, parts))  # by part, best connected first
    starts = np.flatnonzero(np.r_[True, np.diff(parts[order]) != 0])  # where each part begins
    sizes = np.diff(np.r_[starts, n])
    full = sizes // size * size  # the rows of a part that make whole clusters
    rank = np.arange(n) - np.repeat(starts, sizes)  # position of a row within its part
    whole = rank < np.repeat(full, sizes)
    pool = order[~whole]  # what is left of every part, in part order
    filled = len(pool) - len(pool) % size
    clusters = np.concatenate([order[whole], pool[:filled]]).reshape(-1, size).tolist()
    trimmed = int((sizes - full)[sizes > size].sum())
    stats = {
        "part_size_min": float(sizes.min()),
        "part_size_p50": float(np.median(sizes)),
        "part_size_max": float(sizes.max()),
        "parts_oversized": float((sizes > size).sum()),
        "parts_undersized": float((sizes < size).sum()),
        "clusters": float(len(clusters)),
        "trimmed": float(trimmed),
        "filled": float(filled),
        "left_out": float(len(pool) - filled),
    }
    return clusters, stats


def _metis(job: tuple) -> np.ndarray:
    """METIS on one graph: (xadj, adjncy, n_parts, seed, recursive[, target part weights])."""
    xadj, adjncy, n_parts, seed, recursive, *weights = job
    if n_parts == 1:
        return np.zeros(len(xadj) - 1, dtype=np.int64)
    import pymetis  # native; imported only when METIS is used

    _, parts = pymetis.part_graph(
        n_parts,
        adjacency=pymetis.CSRAdjacency(xadj, adjncy),
        recursive=recursive,
        tpwgts=weights[0] if weights else None,
        options=pymetis.Options(seed=seed),
    )
    return np.asarray(parts, dtype=np.int64)


def _halves_in_parallel(
    xadj: np.ndarray, adjncy: np.ndarray, n_parts: int, seed: int
) -> np.ndarray:
    """METIS's recursive bisection with its first cut made here: bisect the graph in the
    ratio of the parts each side gets, then partition each side's subgraph, the two in two
    processes where two CPUs are free and ``OMP_NUM_THREADS`` (a Snakemake job's ``threads``)
    allows two (the same result with one: it does not depend on them).
    Recursive bisection does exactly this at every level; doing the first level here lets a
    million-row graph use both cores of a laptop."""
    left = n_parts // 2
    if left < 2 or len(xadj) - 1 < 4 * n_parts:  # too small to be worth two processes
        return _metis((xadj, adjncy, n_parts, seed, True))
    import scipy.sparse

    half = _metis((xadj, adjncy, 2, seed, True, [left / n_parts, 1 - left / n_parts]))
    n = len(xadj) - 1
    graph = scipy.sparse.csr_matrix((np.ones(len(adjncy), dtype=bool), adjncy, xadj), (n, n))
    sides = [np.flatnonzero(half == side) for side in (0, 1)]
    jobs = []
    for nodes, k in zip(sides, (left, n_parts - left), strict=True):
        sub = graph[nodes][:, nodes]  # the induced subgraph, renumbered 0..len(nodes)-1
        jobs.append((sub.indptr, sub.indices, k, seed, True))
    del graph, sub
    cpus = len(os.sched_getaffinity(0))
    if int(os.environ.get("OMP_NUM_THREADS", cpus)) > 1 and cpus > 1:  # a job's thread budget
        # fork: works from any __main__ (a notebook, `python -`); the child runs METIS alone
        # (no OpenMP) and shares the parent's pages until it writes (pymetis holds the GIL,
        # so threads would not run the halves at once)
        with ProcessPoolExecutor(2, mp_context=get_context("fork")) as pool:
            results = list(pool.map(_metis, jobs))
    else:
        results = [_metis(job) for job in jobs]
    parts = np.empty(n, dtype=np.int64)
    parts[sides[0]], parts[sides[1]] = results[0], results[1] + left
    return parts


def partition(
    xadj: np.ndarray, adjncy: np.ndarray, n_parts: int, detector: str, seed: int
) -> np.ndarray:
    """A part number per node: METIS into ``n_parts`` balanced parts, or Louvain communities.

    ``metis-recursive`` (the default) is METIS's recursive bisection, ``metis`` its k-way
    partitioning. With parts of a few tens of rows, k-way barely coarsens the graph (METIS
    stops coarsening at 30 vertices per part): recursive bisection is then several times
    faster and keeps more edges inside parts (docs/mining-scale.md).
    Louvain (networkx, pure Python: for up to ~100k examples) finds communities of any size;
    fixed_size_clusters then cuts and fills them to the cluster size.
    """
    n = len(xadj) - 1
    if detector == "metis":
        return _metis((xadj, adjncy, n_parts, seed, False))
    if detector == "metis-recursive":
        return _halves_in_parallel(xadj, adjncy, n_parts, seed)
    if detector == "louvain":
        import networkx as nx

        graph = nx.Graph()
        graph.add_nodes_from(range(n))
        src = np.repeat(np.arange(n), np.diff(xadj))
        graph.add_edges_from(zip(src.tolist(), adjncy.tolist(), strict=True))
        parts = np.empty(n, dtype=np.int64)
        for label, members in enumerate(nx.community.louvain_communities(graph, seed=seed)):
            parts[list(members)] = label
        return parts
    raise SettingError(
        f"unknown community detector {detector!r}; expected metis, metis-recursive or louvain"
    )


def b3_batches(
    emb: np.ndarray,
    texts: Sequence[str],
    batch_size: int,
    epochs: int,
    seed: int,
    p: int = 2,
    m: int = 16,
    cluster_size: int = 8,
    hard_negatives: int = 1,
    knn: str = "auto",
    nprobe: int = 16,
    detector: str = "metis-recursive",
    **_: object,
) -> tuple[list[list[list[int]]], dict[int, list[int]], dict[str, float]]:
    """B3 batches for L2-normalised teacher embeddings ``emb`` (see the module docstring)."""
    n = emb.shape[0]
    check_size(n, batch_size)
    if batch_size % cluster_size:
        raise SettingError(
            f"cluster_size={cluster_size} must divide batch size {batch_size} "
            "(a batch is made of whole clusters)"
        )
    if p + m >= n:
        raise SettingError(f"rank window p+m={p + m} must be below N={n}; lower mine.b3.p or m")
    clock = [time.perf_counter()]  # each step's wall time goes into the stats (seconds_*)

    def lap() -> float:
        clock.append(time.perf_counter())
        return clock[-1] - clock[-2]

    neighbours, _ = topk_neighbours(emb, p + m, backend=knn, nprobe=nprobe, seed=seed)
    seconds = {"seconds_knn": lap()}
    candidates = neighbours[:, p:]
    xadj, adjncy = mutual_graph(candidates)
    seconds["seconds_graph"] = lap()
    parts = partition(xadj, adjncy, max(1, -(-n // cluster_size)), detector, seed)
    seconds["seconds_partition"] = lap()
    clusters, stats = fixed_size_clusters(parts, xadj, adjncy, cluster_size)
    stats["edges"] = float(len(adjncy) / 2)
    stats["isolated"] = float((np.diff(xadj) == 0).sum())
    del xadj, adjncy, parts
    seconds["seconds_clusters"] = lap()

    rng = np.random.default_rng(seed)
    negatives: dict[int, list[int]] = {}
    for cluster in clusters:
        members = np.asarray(cluster, dtype=np.int64)
        excluded = np.concatenate([members, neighbours[members, :p].ravel(), [-1]])
        pool = np.setdiff1d(candidates[members].ravel(), excluded)  # sorted, unique
        take = min(hard_negatives, len(pool))
        if take <= 1:  # the default: one uniform pick per member (none from an empty pool)
            picks = rng.integers(0, max(len(pool), 1), size=(len(cluster), take))
        else:  # K distinct picks per member: the K smallest of random keys, in order
            keys = rng.random((len(cluster), len(pool)))
            picks = np.argpartition(keys, take - 1, axis=1)[:, :take]
            picks = np.take_along_axis(picks, np.argsort(np.take_along_axis(keys, picks, 1)), 1)
        negatives.update(zip(cluster, pool[picks].tolist(), strict=True))

    per_batch = batch_size // cluster_size
    out = []
    for _epoch in range(epochs):
        order = rng.permutation(len(clusters))
        full = len(order) // per_batch * per_batch
        out.append(
            [
                [row for c in order[i : i + per_batch] for row in clusters[c]]
                for i in range(0, full, per_batch)
            ]
        )
    if not out[0]:
        raise SettingError(
            f"b3 made {len(clusters)} clusters of {cluster_size}: too few for one batch of "
            f"{batch_size}; synthesize more anchors or lower the batch size"
        )
    stats["dropped_per_epoch"] = float(n - len(out[0]) * batch_size)
    seconds["seconds_negatives_and_batches"] = lap()
    return out, negatives, stats | seconds
