"""Encoding throughput: embedlab.encode against SentenceTransformer.encode, same model and data.

Both sides embed the unique sentences of the seven STS test sets (or --limit of them) with
all-MiniLM-L6-v2, alternating, --repeats times; prints the medians and their ratio.

    .venv/bin/python benchmarks/encode_speed.py --mirror ../shared/data --limit 4000
"""

import argparse
import statistics
import time

import numpy as np

from embedlab.encode import encode, load_encoder
from embedlab.sts_data import STS_TASKS, load_sts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mirror", default="../shared/data")
    parser.add_argument("--limit", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    tasks = [load_sts(t, [args.mirror]) for t in STS_TASKS]
    texts = sorted({s for t in tasks for s in (*t.s1, *t.s2)})
    texts = [texts[i] for i in np.random.default_rng(0).permutation(len(texts))[: args.limit]]
    model = load_encoder("sentence-transformers/all-MiniLM-L6-v2", device="cpu")
    ours, theirs = [], []
    for _ in range(args.repeats):
        started = time.perf_counter()
        a = encode(model, texts, args.batch_size)
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        b = model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True)
        theirs.append(time.perf_counter() - started)
    assert np.abs(a - b).max() < 1e-4, "the two encoders disagree"
    n = len(texts)
    print(f"sentences: {n}, batch size {args.batch_size}, repeats {args.repeats}")
    print(
        f"embedlab.encode        median {statistics.median(ours):.2f} s "
        f"({n / statistics.median(ours):.0f} sentences/s)"
    )
    print(
        f"SentenceTransformer    median {statistics.median(theirs):.2f} s "
        f"({n / statistics.median(theirs):.0f} sentences/s)"
    )
    print(
        f"speed ratio (sentence-transformers time / embedlab time): "
        f"{statistics.median(theirs) / statistics.median(ours):.2f}x"
    )


if __name__ == "__main__":
    main()
