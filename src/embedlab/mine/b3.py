"""B3 batches ("Breaking the Batch Barrier"): hard in-batch negatives from a teacher's ranking.

1. For each example, the teacher's neighbours at ranks [p, p+m) are candidate strong negatives
   (the top p are skipped as likely false negatives). Blocked top-k: no N x N matrix.
2. A sparse graph keeps the mutual candidate edges (meanwhile the neighbours wait in a
   temporary file, so that METIS has the memory: docs/mining-scale.md).
3. METIS (pymetis) cuts it into ceil(N / c) parts (or Louvain finds communities); parts are
   then made exactly size c (members with the fewest edges inside an oversized part are
   trimmed; short parts are filled with them). ``cluster_size="batch"`` makes c = B: each
   batch is one cluster, hard in all of its B - 1 partners.
4. Each epoch shuffles the clusters and a batch is B / c whole clusters.
5. Each example gets K hard negatives drawn from its cluster's candidate lists, excluding the
   cluster's members and anything in a member's top p.

Example::

    epochs, negs, stats = b3_batches(emb, texts, batch_size=32, epochs=2, seed=0,
                                     p=2, m=16, cluster_size=8)
"""

import os
import tempfile
import time
from collections.abc import Sequence
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
    del cols, indptr
    at = a.T.tocsr()
    # row blocks: scipy's elementwise product allocates nnz(A) + nnz(Aᵀ) entries for its
    # output (1 GB at a million rows), a block only its share
    step = max(1, 2**24 // max(k, 1))
    mutual = [a[i : i + step].multiply(at[i : i + step]).tocsr() for i in range(0, n, step)]
    del a, at
    mutual = scipy.sparse.vstack(mutual, format="csr")
    mutual.sort_indices()
    return mutual.indptr, mutual.indices  # int32 below 2**31 edges


def inside_degree(parts: np.ndarray, xadj: np.ndarray, adjncy: np.ndarray) -> np.ndarray:
    """Each node's number of neighbours in its own part."""
    inside = parts[adjncy] == np.repeat(parts, np.diff(xadj))  # edge i-j within i's part
    count = np.concatenate([[0], np.cumsum(inside, dtype=np.int64)])
    return count[xadj[1:]] - count[xadj[:-1]]


def fixed_size_clusters(
    parts: np.ndarray, degree: np.ndarray, size: int
) -> tuple[list[list[int]], dict[str, float]]:
    """Make METIS parts exactly ``size`` long; leftover examples (< size) are left out.

    Within a part, the nodes with the most neighbours inside it (``degree``, from
    :func:`inside_degree`) come first (ties by id); full clusters are cut from the front, and
    the rest of every part is pooled and cut in order.
    """
    n = len(parts)
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


def _metis(
    xadj: np.ndarray,
    adjncy: np.ndarray,
    n_parts: int,
    seed: int,
    recursive: bool,
    weights: list[float] | None = None,
) -> np.ndarray:
    """METIS on one graph (``weights``: the target share of each part)."""
    if n_parts == 1:
        return np.zeros(len(xadj) - 1, dtype=np.int64)
    import pymetis  # native; imported only when METIS is used

    _, parts = pymetis.part_graph(
        n_parts,
        adjacency=pymetis.CSRAdjacency(xadj, adjncy),
        recursive=recursive,
        tpwgts=weights,
        options=pymetis.Options(seed=seed),
    )
    return np.asarray(parts, dtype=np.int64)


def _metis_ints(a: np.ndarray) -> np.ndarray:
    """``a`` in METIS's own integer type (64-bit in pymetis's wheels): pymetis copies anything
    else, once per call."""
    import pymetis

    return a.astype(pymetis.zero_copy_dtype(), copy=False)


def _split(
    xadj: np.ndarray, adjncy: np.ndarray, n_parts: int, seed: int
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray, int]]]:
    """The first cut of METIS's recursive bisection, made here: the graph bisected in the ratio
    of the parts each side gets. Returns the side of each node and each side's induced
    subgraph (renumbered from 0, in METIS's integer type) with its number of parts."""
    import scipy.sparse

    left = n_parts // 2
    side = _metis(xadj, adjncy, 2, seed, True, [left / n_parts, 1 - left / n_parts])
    n = len(xadj) - 1
    graph = scipy.sparse.csr_matrix((np.ones(len(adjncy), dtype=bool), adjncy, xadj), (n, n))
    halves = []
    for s, k in ((0, left), (1, n_parts - left)):
        nodes = np.flatnonzero(side == s)
        sub = graph[nodes][:, nodes]
        halves.append((_metis_ints(sub.indptr), _metis_ints(sub.indices), k))
    return side, halves


def _half(xadj: np.ndarray, adjncy: np.ndarray, n_parts: int, seed: int):
    """METIS's recursive bisection of one side of :func:`_split`: its parts and each node's
    in-part degree."""
    parts = _metis(xadj, adjncy, n_parts, seed, True)
    return parts, inside_degree(parts, xadj, adjncy)


def _halves(
    side: np.ndarray, halves: list[tuple[np.ndarray, np.ndarray, int]], seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Partition the two sides of :func:`_split`: in two processes where two CPUs are free and
    ``OMP_NUM_THREADS`` (a Snakemake job's ``threads``) allows two, else one after the other
    (the same result: it does not depend on them). Returns parts and in-part degrees."""
    cpus = len(os.sched_getaffinity(0))
    jobs = [(*half, seed) for half in halves]
    if int(os.environ.get("OMP_NUM_THREADS", cpus)) > 1 and cpus > 1:
        results = _in_forked_processes(_half, jobs)
    else:
        results = [_half(*job) for job in jobs]
    parts = np.empty(len(side), dtype=np.int64)
    degree = np.empty(len(side), dtype=np.int64)
    for s, (got, deg) in enumerate(results):
        on_side = side == s
        parts[on_side], degree[on_side] = got + s * halves[0][2], deg
    return parts, degree


def _in_forked_processes(fn, jobs: list[tuple]) -> list:
    """``[fn(*job) for job in jobs]``, each job in a process of its own, at once.

    The fork guarantee is kept here: a child is forked with its job as the arguments of its
    ``Process``, so it inherits the subgraphs without a copy (nothing is pickled on the way in,
    and any ``__main__`` works: a notebook, ``python -``); only the result comes back, through a
    pipe. Each child runs METIS alone (pymetis holds the GIL: threads would not run at once). A
    child that raises or dies stops the miner with what happened.
    """
    context = get_context("fork")
    running = []
    for job in jobs:
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=_child, args=(send, fn, job), daemon=True)
        process.start()
        send.close()  # the child's end: the parent sees EOF if the child dies
        running.append((process, receive))
    results = []
    for process, receive in running:
        try:
            ok, value = receive.recv()
        except EOFError:
            ok, value = False, "it died"
        process.join()
        if not ok:
            raise RuntimeError(f"a METIS process failed ({value}; exit code {process.exitcode})")
        results.append(value)
    return results


def _child(send, fn, job: tuple) -> None:
    try:
        send.send((True, fn(*job)))
    except BaseException as err:  # reported to the parent, which raises
        send.send((False, f"{type(err).__name__}: {err}"))
    finally:
        send.close()


def _recursive_is_split(n: int, n_parts: int) -> bool:
    """Whether recursive bisection makes its first cut here (and runs the halves apart)."""
    return n_parts // 2 >= 2 and n >= 4 * n_parts


def partition(
    graph: list[np.ndarray], n_parts: int, detector: str, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """A part number per node and the node's degree inside its part: METIS into ``n_parts``
    balanced parts, or Louvain communities. ``graph`` is ``[xadj, adjncy]`` (CSR), handed
    over: recursive bisection empties the list once its two halves are cut out, so the whole
    graph is freed while METIS runs (at a million rows it is 0.5 GB; docs/mining-scale.md).

    ``metis-recursive`` (the default) is METIS's recursive bisection, ``metis`` its k-way
    partitioning. With parts of a few tens of rows, k-way barely coarsens the graph (METIS
    stops coarsening at 30 vertices per part): recursive bisection is then several times
    faster and keeps more edges inside parts (docs/mining-scale.md). Recursive bisection makes
    its first cut here and partitions the two halves in two processes (:func:`_halves`).
    Louvain (networkx, pure Python: for up to ~100k examples) finds communities of any size;
    fixed_size_clusters then cuts and fills them to the cluster size.
    """
    xadj, adjncy = graph
    n = len(xadj) - 1
    if detector == "metis-recursive" and _recursive_is_split(n, n_parts):
        xadj, adjncy = _metis_ints(xadj), _metis_ints(adjncy)  # no copy inside METIS
        side, halves = _split(xadj, adjncy, n_parts, seed)
        graph.clear()
        del xadj, adjncy  # the halves are all that METIS needs from here on
        return _halves(side, halves, seed)
    if detector in ("metis", "metis-recursive"):
        parts = _metis(xadj, adjncy, n_parts, seed, recursive=detector == "metis-recursive")
    elif detector == "louvain":
        parts = _louvain(xadj, adjncy, seed)
    else:
        raise SettingError(
            f"unknown community detector {detector!r}; expected metis, metis-recursive or louvain"
        )
    return parts, inside_degree(parts, xadj, adjncy)


def _louvain(xadj: np.ndarray, adjncy: np.ndarray, seed: int) -> np.ndarray:
    import networkx as nx

    n = len(xadj) - 1
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    src = np.repeat(np.arange(n), np.diff(xadj))
    graph.add_edges_from(zip(src.tolist(), adjncy.tolist(), strict=True))
    parts = np.empty(n, dtype=np.int64)
    for label, members in enumerate(nx.community.louvain_communities(graph, seed=seed)):
        parts[list(members)] = label
    return parts


def graph_parts(
    neighbours_file: str, p: int, n_parts: int, detector: str, seed: int
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """The mutual graph of the candidates (columns ``p:`` of the neighbours saved in
    ``neighbours_file``), partitioned: the part of each row, its neighbours inside its part,
    and the graph's stats and step times.

    It reads the neighbours from a file and hands the graph to :func:`partition`, so that
    nothing METIS does not need stays in memory while it runs. At a million rows the neighbours
    (0.5 GB) and the graph (0.5 GB in METIS's integers) are what the two METIS processes need
    (docs/mining-scale.md).
    """
    started = time.perf_counter()
    graph = list(mutual_graph(np.load(neighbours_file, mmap_mode="r")[:, p:]))
    stats = {"edges": float(len(graph[1]) / 2), "isolated": float((np.diff(graph[0]) == 0).sum())}
    stats["seconds_graph"] = time.perf_counter() - started
    parts, degree = partition(graph, n_parts, detector, seed)
    stats["seconds_partition"] = time.perf_counter() - started - stats["seconds_graph"]
    return parts, degree, stats


def b3_batches(
    emb: np.ndarray,
    texts: Sequence[str],
    batch_size: int,
    epochs: int,
    seed: int,
    p: int = 2,
    m: int = 16,
    cluster_size: int | str = 8,
    hard_negatives: int = 1,
    knn: str = "auto",
    nprobe: int = 16,
    detector: str = "metis-recursive",
    decimals: int | None = 3,
    **_: object,
) -> tuple[list[list[list[int]]], dict[int, list[int]], dict[str, float]]:
    """B3 batches for L2-normalised teacher embeddings ``emb`` (see the module docstring).
    Neighbours are ranked by similarity rounded to ``decimals`` (ties by index), so that
    embeddings equal up to float noise give the same batches (``knn.stable_ranks``)."""
    n = emb.shape[0]
    check_size(n, batch_size)
    if cluster_size == "batch":
        cluster_size = batch_size
    if not isinstance(cluster_size, int) or cluster_size < 1:
        raise SettingError(f"cluster_size={cluster_size!r}: expected a positive int or 'batch'")
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

    neighbours = topk_neighbours(
        emb, p + m, backend=knn, nprobe=nprobe, seed=seed, decimals=decimals
    )[0]
    seconds = {"seconds_knn": lap()}
    with tempfile.TemporaryDirectory(prefix="embedlab-b3-") as spill:
        # the neighbours wait on disk while the graph is built and cut (graph_parts)
        np.save(saved := os.path.join(spill, "neighbours.npy"), neighbours)
        del neighbours
        seconds["seconds_spill"] = lap()
        n_parts = max(1, -(-n // cluster_size))
        parts, degree, stats = graph_parts(saved, p, n_parts, detector, seed)
        lap()  # graph_parts times its two steps itself
        seconds |= {k: stats.pop(k) for k in ("seconds_graph", "seconds_partition")}
        clusters, cluster_stats = fixed_size_clusters(parts, degree, cluster_size)
        del parts, degree
        seconds["seconds_clusters"] = lap()
        neighbours = np.load(saved)
        seconds["seconds_spill"] += lap()
    stats |= cluster_stats
    candidates = neighbours[:, p:]

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
