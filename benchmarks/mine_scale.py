"""Mining at scale: every miner's wall time and peak memory on N synthetic 384-d embeddings, and
B3 against the strongest dense implementation at the published parameters.

Two records:

- ``results/mine-b3.json``: B3 with the published p=30, m=100, cluster size 32 (B=64) at
  ``--compare-n``, embedlab against a dense top-k (blocked ``emb @ emb.T`` with ``torch.topk``:
  neither the N x N sort nor the rank matrix of the published code, which runs beside it as
  ``dense argsort``), partitioned by METIS's recursive bisection as embedlab's default is (the
  peer), and by METIS k-way as published (beside it); all build the same mutual graph, then
  METIS parts and batches.
  Seeds ``--seeds``, alternating; medians.
- ``results/mine-scale.json``: seconds and peak memory of every miner at each of ``--sizes``,
  and at ``--b3-sizes`` of b3 alone with the settings for a million rows (``b3 cells+rb``:
  ``knn: cells``, ``detector: metis-recursive``; docs/mining-scale.md).

Each measurement runs in its own process, so peak RSS (ru_maxrss) is that run's alone, the
input embeddings (N x 384 float32) included. ``metis-recursive`` partitions two halves in two
child processes (forked: they share the parent's pages): while any runs, the process's RSS
plus the children's unique set size (USS: pages no other process maps) is sampled every
0.5 s, and the recorded peak is the larger of that and ru_maxrss. (Sampling every process's
proportional set size all along slowed the 1M run by a third: it walks every page.)

    .venv/bin/python benchmarks/mine_scale.py --compare-n 20000 --sizes 100000 --b3-sizes 1000000
"""

import argparse
import contextlib
import json
import resource
import statistics
import subprocess
import sys
import threading
import time

import numpy as np
import psutil
from record import RESULTS, Record, commit, machine, write

from embedlab.mine.b3 import fixed_size_clusters, inside_degree, mutual_graph
from embedlab.mine.batches import in_batch_similarity

P, M, CLUSTER, BATCH = 30, 100, 32, 64  # B3's published setting
FAST_B3 = "b3 cells+rb"  # b3 with the settings for a million rows on a CPU
FAST_OPTIONS = {"knn": "cells", "detector": "metis-recursive"}
DENSE = "dense top-k"  # the peer: METIS recursive bisection, as embedlab's default
DENSE_KWAY = "dense top-k, METIS k-way (as published)"


def synthetic(n: int, seed: int = 0, chunk: int = 65_536) -> np.ndarray:
    """Clustered unit vectors: n // 100 centres, noise of the same scale per dimension. Made in
    float32 chunks, so that the peak memory of a run is the miner's, not this function's."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // 100), 384), dtype=np.float32)
    which = rng.integers(0, len(centres), n)
    x = np.empty((n, 384), dtype=np.float32)
    for start in range(0, n, chunk):
        part = centres[which[start : start + chunk]]
        part += 0.5 * rng.standard_normal(part.shape, dtype=np.float32)
        x[start : start + chunk] = part / np.linalg.norm(part, axis=1, keepdims=True)
    return x


def _batches(parts: np.ndarray, xadj, adjncy, seed: int) -> list[list[int]]:
    clusters, _ = fixed_size_clusters(parts, inside_degree(parts, xadj, adjncy), CLUSTER)
    order = np.random.default_rng(seed).permutation(len(clusters))
    per = BATCH // CLUSTER
    return [
        [r for c in order[i : i + per] for r in clusters[c]]
        for i in range(0, len(order) // per * per, per)
    ]


def _metis(n: int, xadj, adjncy, seed: int, recursive: bool = False) -> np.ndarray:
    import pymetis

    _, parts = pymetis.part_graph(
        -(-n // CLUSTER),
        adjacency=pymetis.CSRAdjacency(xadj, adjncy),
        recursive=recursive,
        options=pymetis.Options(seed=seed),
    )
    return np.asarray(parts)


def dense_topk(emb: np.ndarray, seed: int, recursive: bool, block: int = 2048) -> list[list[int]]:
    """The strongest plain implementation: blocked similarity rows, torch.topk of p + m, then
    the rank window, the mutual graph, METIS and the same batches."""
    import torch  # here: a METIS child process re-imports this module and needs no torch

    data = torch.from_numpy(emb)
    n = emb.shape[0]
    candidates = np.empty((n, M), dtype=np.int64)
    for start in range(0, n, block):
        scores = data[start : start + block] @ data.T
        rows = torch.arange(scores.shape[0])
        scores[rows, rows + start] = -torch.inf
        candidates[start : start + block] = torch.topk(scores, P + M).indices[:, P:].numpy()
    xadj, adjncy = mutual_graph(candidates)
    return _batches(_metis(n, xadj, adjncy, seed, recursive), xadj, adjncy, seed)


def dense_argsort(emb: np.ndarray, seed: int) -> list[list[int]]:
    """The published procedure as written: N x N similarity, rank and adjacency matrices."""
    n = emb.shape[0]
    sim = emb @ emb.T
    np.fill_diagonal(sim, -np.inf)
    candidates = np.argsort(-sim, axis=1)[:, P : P + M]
    adj = np.zeros((n, n), dtype=bool)
    adj[np.repeat(np.arange(n), M), candidates.ravel()] = True
    adj &= adj.T
    xadj = np.concatenate([[0], np.cumsum(adj.sum(1))])
    adjncy = np.nonzero(adj)[1]
    return _batches(_metis(n, xadj, adjncy, seed), xadj, adjncy, seed)


class TreePeak(threading.Thread):
    """While child processes run: the largest RSS of this process plus the children's USS."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak, self.done = 0, threading.Event()

    def run(self) -> None:
        me = psutil.Process()
        while not self.done.wait(0.5):
            children = me.children(recursive=True)
            if not children:
                continue  # ru_maxrss covers this process alone
            total = me.memory_info().rss
            for child in children:
                with contextlib.suppress(psutil.Error):  # a child may end meanwhile
                    total += child.memory_full_info().uss
            self.peak = max(self.peak, total)


def one(n: int, method: str, seed: int) -> dict:
    from embedlab.mine import MINERS

    emb = synthetic(n)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    tree = TreePeak()
    tree.start()
    started = time.perf_counter()
    steps = {}  # a miner's own timing of its steps (b3: seconds_knn, seconds_graph, ...)
    if method.startswith(DENSE):
        batches = dense_topk(emb, seed, recursive=method == DENSE)
    elif method == "dense argsort":
        batches = dense_argsort(emb, seed)
    else:
        options = {"p": P, "m": M, "cluster_size": CLUSTER} if method.startswith("b3") else {}
        options |= FAST_OPTIONS if method == FAST_B3 else {}
        miner = MINERS[method.split()[0]]
        epochs, _, stats = miner(emb, None, BATCH, 1, seed, positives=emb, **options)
        batches = epochs[0]
        steps = {k: round(v, 2) for k, v in stats.items() if k.startswith("seconds_")}
    seconds = time.perf_counter() - started
    tree.done.set()
    tree.join()
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return {
        "n": n,
        "method": method,
        "seed": seed,
        "seconds": seconds,
        "peak_gib": max(own, tree.peak / 2**30),
        "base_gib": base,
        "hardness": float(in_batch_similarity(emb, [batches[:2000]]).mean()),
        "steps": steps,
    }


def run(n: int, method: str, seed: int = 0) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--one", str(n), method, str(seed)],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"{n:>9} {method:>14} seed {seed}: {result['seconds']:8.1f} s, "
        f"{result['peak_gib']:.2f} GiB peak, hardness {result['hardness']:.4f}",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--compare-n", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--no-argsort", action="store_true", help="skip the N x N reference")
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000])
    parser.add_argument(
        "--miners", nargs="+", default=["random", "hardneg", "kmeans", "b3", FAST_B3]
    )
    parser.add_argument("--b3-sizes", type=int, nargs="*", default=[1_000_000])
    parser.add_argument("--one", nargs=3, metavar=("N", "METHOD", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(int(args.one[0]), args.one[1], int(args.one[2]))))
        return

    methods = ["b3", DENSE, DENSE_KWAY] + ([] if args.no_argsort else ["dense argsort"])
    runs: dict[str, list[dict]] = {m: [] for m in methods}
    for i, seed in enumerate(args.seeds):  # alternating which method goes first
        for method in methods if i % 2 == 0 else list(reversed(methods)):
            runs[method].append(run(args.compare_n, method, seed))

    def side(method: str) -> dict:
        rs = runs[method]
        return {
            "median": statistics.median(r["seconds"] for r in rs),
            "runs": [round(r["seconds"], 2) for r in rs],
            "peak_gib": statistics.median(r["peak_gib"] for r in rs),
            "hardness": statistics.mean(r["hardness"] for r in rs),
        }

    sides = {("embedlab" if m == "b3" else m): side(m) for m in methods}
    memory = ", ".join(f"{name} {s['peak_gib']:.2f} GiB" for name, s in sides.items())
    hardness = ", ".join(f"{name} {s['hardness']:.4f}" for name, s in sides.items())
    write(
        Record(
            name="mine-b3",
            title="B3 mining at the published parameters",
            peer=DENSE,
            unit="s",
            higher_is_better=False,
            sides=sides,
            setup=f"N={args.compare_n} clustered 384-d vectors, p={P}, m={M}, cluster {CLUSTER},"
            f" B={BATCH}, seeds {args.seeds}",
            notes=f"Peak memory (medians): {memory}. In-batch hardness: {hardness}.",
        )
    )

    scale = [run(n, miner) for n in args.sizes for miner in args.miners]
    scale += [run(n, FAST_B3) for n in args.b3_sizes if n not in args.sizes]
    record = {
        "name": "mine-scale",
        "kind": "scale",
        "title": f"every miner at scale (B={BATCH}; b3 with p={P}, m={M}, cluster {CLUSTER})",
        "rows": [
            {k: r[k] for k in ("n", "method", "seconds", "peak_gib", "hardness", "steps")}
            for r in scale
        ],
        "command": " ".join(["python", *sys.argv]),
        "commit": commit(),
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
    }
    (RESULTS / "mine-scale.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {RESULTS / 'mine-scale.json'}")


if __name__ == "__main__":
    main()
