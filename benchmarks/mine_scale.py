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


def one(n: int, method: str, seed: int = 0) -> dict[str, float]:
    from embedlab.mine import b3_batches, random_batches

    emb = synthetic(n)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    started = time.perf_counter()
    if method == "dense":
        batches = dense_reference(emb, seed=seed)
    else:
        epochs, _, _ = b3_batches(emb, None, BATCH, 1, seed, p=P, m=M, cluster_size=CLUSTER)
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
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0, 1, 2],
        help="mining seeds of the dense comparison",
    )
    parser.add_argument("--one", nargs=3, metavar=("N", "METHOD", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(int(args.one[0]), args.one[1], int(args.one[2]))))
        return
    jobs = [(n, "embedlab", 0) for n in args.sizes]
    for n in args.dense:
        jobs += [(n, method, s) for s in args.seeds for method in ("embedlab", "dense")]
    print(f"B3 with p={P}, m={M}, cluster size {CLUSTER}, batch {BATCH}; 384-d synthetic data")
    print("peak GiB: the process's peak RSS; added: peak minus RSS before mining (data loaded)")
    print(
        f"{'N':>9} {'method':>9} {'seed':>5} {'seconds':>9} {'peak GiB':>9} {'added':>9} "
        f"{'hardness':>9} {'random':>9}"
    )
    results = {}
    for n, method, seed in jobs:
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(n), method, str(seed)],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        results.setdefault((n, method), []).append(r)
        print(
            f"{n:>9} {method:>9} {seed:>5} {r['seconds']:>9.1f} {r['peak_gib']:>9.2f} "
            f"{r['peak_gib'] - r['base_gib']:>9.2f} {r['hardness']:>9.4f} "
            f"{r['random_hardness']:>9.4f}",
            flush=True,
        )
    for n in args.dense:
        ours, dense = results[(n, "embedlab")], results[(n, "dense")]

        def median(runs: list[dict[str, float]], key: str) -> float:
            return float(np.median([r[key] for r in runs]))

        def hardness(runs: list[dict[str, float]]) -> str:
            values = [r["hardness"] for r in runs]
            return f"{np.mean(values):.4f} ± {np.std(values):.4f}"

        print(
            f"N={n}, seeds {args.seeds}: dense/embedlab median time "
            f"{median(dense, 'seconds') / median(ours, 'seconds'):.1f}x, median peak memory "
            f"{median(dense, 'peak_gib') / median(ours, 'peak_gib'):.1f}x; hardness "
            f"{hardness(ours)} (embedlab) vs {hardness(dense)} (dense)"
        )


if __name__ == "__main__":
    main()
