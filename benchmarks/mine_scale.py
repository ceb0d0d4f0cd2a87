"""B3 at scale: wall time and peak memory for N synthetic 384-d embeddings, and a comparison
with a dense re-implementation of the published procedure (an N x N similarity and rank
matrix) at a size where that still fits.

Each measurement runs in its own process, so peak RSS (ru_maxrss) is that run's alone; the
input embeddings themselves (N x 384 float32) are included in it.

    .venv/bin/python benchmarks/mine_scale.py --sizes 10000 100000 1000000 --dense 20000
"""

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

from embedlab.mine.b3 import fixed_size_clusters
from embedlab.mine.batches import in_batch_similarity

P, M, CLUSTER, BATCH = 10, 16, 8, 64


def synthetic(n: int, seed: int = 0) -> np.ndarray:
    """Clustered unit vectors: n // 100 centres, noise of the same scale per dimension."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // 100), 384)).astype(np.float32)
    x = centres[rng.integers(0, len(centres), n)]
    x += 0.5 * rng.standard_normal((n, 384)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def dense_reference(emb: np.ndarray, seed: int) -> list[list[int]]:
    """The published procedure, densely: full similarity and rank matrices, a dense mutual
    adjacency matrix, METIS, then the same fixed-size clusters and batches as ours."""
    import pymetis

    n = emb.shape[0]
    sim = emb @ emb.T  # N x N
    np.fill_diagonal(sim, -np.inf)
    ranks = np.argsort(-sim, axis=1)  # N x N rank matrix
    candidates = ranks[:, P : P + M]
    adj = np.zeros((n, n), dtype=bool)  # N x N adjacency
    adj[np.repeat(np.arange(n), M), candidates.ravel()] = True
    adj &= adj.T
    xadj = np.concatenate([[0], np.cumsum(adj.sum(1))])
    adjncy = np.nonzero(adj)[1]
    _, parts = pymetis.part_graph(
        -(-n // CLUSTER),
        adjacency=pymetis.CSRAdjacency(xadj, adjncy),
        options=pymetis.Options(seed=seed),
    )
    clusters, _ = fixed_size_clusters(np.asarray(parts), xadj, adjncy, CLUSTER)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(clusters))
    per = BATCH // CLUSTER
    return [
        [r for c in order[i : i + per] for r in clusters[c]]
        for i in range(0, len(order) // per * per, per)
    ]


def one(n: int, method: str) -> dict[str, float]:
    from embedlab.mine import b3_batches, random_batches

    emb = synthetic(n)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    started = time.perf_counter()
    if method == "dense":
        batches = dense_reference(emb, seed=0)
    else:
        epochs, _, _ = b3_batches(emb, None, BATCH, 1, 0, p=P, m=M, cluster_size=CLUSTER)
        batches = epochs[0]
    seconds = time.perf_counter() - started
    rnd, _, _ = random_batches(emb, None, BATCH, 1, 0)
    sample = batches[:2000]  # hardness on a sample of batches: cheap at any N
    return {
        "n": n,
        "method": method,
        "seconds": seconds,
        "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "base_gib": base,
        "hardness": float(in_batch_similarity(emb, [sample]).mean()),
        "random_hardness": float(in_batch_similarity(emb, [rnd[0][:2000]]).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dense", type=int, nargs="*", default=[20_000])
    parser.add_argument("--one", nargs=2, metavar=("N", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(int(args.one[0]), args.one[1])))
        return
    jobs = [(n, "embedlab") for n in args.sizes]
    for n in args.dense:
        jobs += [(n, "embedlab"), (n, "dense")]
    print(f"B3 with p={P}, m={M}, cluster size {CLUSTER}, batch {BATCH}; 384-d synthetic data")
    print("peak GiB: the process's peak RSS; added: peak minus RSS before mining (data loaded)")
    print(
        f"{'N':>9} {'method':>9} {'seconds':>9} {'peak GiB':>9} {'added':>9} "
        f"{'hardness':>9} {'random':>9}"
    )
    results = {}
    for n, method in jobs:
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(n), method],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        results[(n, method)] = r
        print(
            f"{n:>9} {method:>9} {r['seconds']:>9.1f} {r['peak_gib']:>9.2f} "
            f"{r['peak_gib'] - r['base_gib']:>9.2f} {r['hardness']:>9.4f} "
            f"{r['random_hardness']:>9.4f}",
            flush=True,
        )
    for n in args.dense:
        ours, dense = results[(n, "embedlab")], results[(n, "dense")]
        print(
            f"N={n}: dense/embedlab time {dense['seconds'] / ours['seconds']:.1f}x, "
            f"peak memory {dense['peak_gib'] / ours['peak_gib']:.1f}x, "
            f"hardness {ours['hardness']:.4f} (embedlab) vs {dense['hardness']:.4f} (dense)"
        )


if __name__ == "__main__":
    main()
