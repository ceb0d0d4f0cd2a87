"""How b3's batches move with float noise in the teacher embeddings, per neighbour-rank rule.

Study 2's teacher embeddings (the `teacher` rule of config/studies/b3.yaml) get ``--draws``
perturbations of N(0, scale) per entry, renormalised; each is mined with b3 at the study's
settings (B = 64, p = 30, m = 100, clusters of 8, seed 0) under each rank rule: the raw
similarities, and rounded to 4 and 3 decimals with ties broken by index (mine.b3.decimals).
Printed per rule: the draws whose batch file is identical to the unperturbed one, the median
(and least) share of clusters kept, and the rows whose rank window [p, p+m) changed.

    make env && .venv/bin/snakemake results/study-b3/teacher/all-MiniLM-L6-v2.npy \\
        --profile profiles/default --configfile config/studies/b3.yaml
    .venv/bin/python benchmarks/b3_float_noise.py --results results/study-b3
"""

import argparse

import numpy as np

from embedlab import schemas
from embedlab.embeddings import TeacherView
from embedlab.mine.b3 import b3_batches
from embedlab.mine.batches import batch_table
from embedlab.mine.knn import topk_neighbours

OPTIONS = dict(batch_size=64, epochs=4, seed=0, p=30, m=100, cluster_size=8)


def clusters(epochs: list) -> set[frozenset]:
    size = OPTIONS["cluster_size"]
    return {frozenset(b[i : i + size]) for b in epochs[0] for i in range(0, len(b), size)}


def window_sets(emb: np.ndarray, decimals: int | None) -> list[tuple[frozenset, frozenset]]:
    p, k = OPTIONS["p"], OPTIONS["p"] + OPTIONS["m"]
    found = topk_neighbours(emb, k, decimals=decimals)[0]
    return [(frozenset(row[:p]), frozenset(row)) for row in found]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", default="results/study-b3")
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--scale", type=float, default=1e-7)
    args = parser.parse_args()
    root, name = args.results, "all-MiniLM-L6-v2"
    pairs = schemas.read(f"{root}/synth/pairs.parquet", schemas.Pairs)
    view = TeacherView.load(
        f"{root}/teacher/{name}.npy", f"{root}/teacher/{name}.ids.parquet", pairs
    )
    emb, ids = view.anchor, pairs["id"].to_list()
    texts = [""] * len(ids)
    draws = []
    for k in range(args.draws):
        noise = np.random.default_rng(2000 + k).standard_normal(emb.shape).astype(np.float32)
        noisy = emb + args.scale * noise
        draws.append(noisy / np.linalg.norm(noisy, axis=1, keepdims=True))
    print(f"N = {len(ids)}, {args.draws} draws of noise {args.scale:g}, b3 {OPTIONS}\n")
    header = ["rank rule", "identical batch files", "clusters kept, median (least)"]
    print("| " + " | ".join([*header, "rows whose window changed, median (most)"]) + " |")
    print("|---|---:|---:|---:|")
    for decimals in (None, 4, 3):
        epochs, negatives, _ = b3_batches(emb, texts, decimals=decimals, **OPTIONS)
        reference, kept_of = batch_table(epochs, ids, negatives), clusters(epochs)
        windows = window_sets(emb, decimals)
        same, kept, moved = 0, [], []
        for noisy in draws:
            other = b3_batches(noisy, texts, decimals=decimals, **OPTIONS)
            same += batch_table(other[0], ids, other[1]).equals(reference)
            kept.append(len(kept_of & clusters(other[0])) / len(kept_of))
            changed = zip(windows, window_sets(noisy, decimals), strict=True)
            moved.append(sum(a != b for a, b in changed))
        rule = "raw similarities" if decimals is None else f"rounded to {decimals} decimals"
        print(
            f"| {rule} | {same} of {args.draws} | {np.median(kept):.3f} ({min(kept):.3f}) "
            f"| {int(np.median(moved))} ({max(moved)}) |"
        )


if __name__ == "__main__":
    main()
