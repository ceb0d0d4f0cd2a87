"""Recall of the approximate neighbour searches against exact search, on the synthetic
clustered embeddings of ``mine_scale.py``: for 2,000 sampled rows, the share of the exact
top p + m neighbours, and of the exact rank window [p, p + m) that B3 takes its candidates
from, that each backend finds. Quality, not speed: it prints, and docs/mining-scale.md quotes it.

    .venv/bin/python benchmarks/knn_recall.py --n 100000
"""

import argparse
import time

import faiss
import numpy as np
from mine_scale import M, P, synthetic

from embedlab.mine.knn import topk_neighbours, without_self


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--backends", nargs="+", default=["faiss-ivf", "cells"])
    args = parser.parse_args()
    k, emb = P + M, synthetic(args.n)
    sample = np.random.default_rng(0).choice(args.n, 2000, replace=False)
    exact = faiss.IndexFlatIP(emb.shape[1])
    exact.add(emb)
    truth = without_self(*exact.search(emb[sample], k + 1)[::-1], sample, k)[0]
    for backend in args.backends:
        started = time.perf_counter()
        found = topk_neighbours(emb, k, backend=backend)[0][sample]
        seconds = time.perf_counter() - started
        window = np.mean(
            [len(set(t[P:]) & set(f[P:])) / M for t, f in zip(truth, found, strict=True)]
        )
        top = np.mean([len(set(t) & set(f)) / k for t, f in zip(truth, found, strict=True)])
        print(
            f"N={args.n:,} {backend}: rank window [{P}, {P + M}) recall {window:.3f},"
            f" top-{k} recall {top:.3f} ({seconds:.1f} s)"
        )


if __name__ == "__main__":
    main()
