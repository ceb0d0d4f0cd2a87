"""STS evaluation speed: embedlab's evaluate_sts against a plain sentence-transformers loop.

Both score the seven STS tasks (STS12-16, STS-B, SICK-R test; SentEval "all") for
all-MiniLM-L6-v2 from the same files. The loop is what a script would do: per task,
``model.encode`` of the first sentences and of the second ones, cosine, Spearman.
embedlab encodes every distinct sentence of all tasks once, sorted by token length, in batches
of about the same number of tokens (many short sentences together). The two must
give the same numbers (checked to 0.01); they alternate, --repeats times; medians and ratio.

    .venv/bin/python benchmarks/eval_speed.py --mirror ../shared/data --repeats 3
"""

import argparse
import statistics
import time

import numpy as np
from scipy.stats import spearmanr

from embedlab.encode import load_encoder
from embedlab.evaluate import STS_TASKS, evaluate_sts, load_sts


def plain_loop(model, tasks, batch_size: int) -> dict[str, float]:
    out = {}
    for t in tasks:
        a = model.encode(t.s1, batch_size=batch_size, normalize_embeddings=True)
        b = model.encode(t.s2, batch_size=batch_size, normalize_embeddings=True)
        out[t.task] = float(spearmanr((a * b).sum(1), t.gold).statistic * 100)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mirror", default="../shared/data")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    tasks = [load_sts(t, [args.mirror]) for t in STS_TASKS]
    model = load_encoder("sentence-transformers/all-MiniLM-L6-v2", device="cpu")
    n_pairs = sum(len(t.gold) for t in tasks)
    n_unique = len({s for t in tasks for s in (*t.s1, *t.s2)})
    ours, theirs = [], []
    for _ in range(args.repeats):
        started = time.perf_counter()
        scores = evaluate_sts(model, tasks, args.batch_size, progress=False)
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        reference = plain_loop(model, tasks, args.batch_size)
        theirs.append(time.perf_counter() - started)
    pooled = scores.filter(scores["metric"] == "spearman")
    got = dict(zip(pooled["task"], pooled["value"], strict=True))
    worst = max(abs(got[k] - v) for k, v in reference.items())
    assert worst < 0.01, f"the two disagree by {worst:.4f} points"
    a, b = statistics.median(ours), statistics.median(theirs)
    print(
        f"{n_pairs} pairs, {2 * n_pairs} sentences, {n_unique} distinct: embedlab {a:.1f} s, "
        f"sentence-transformers loop {b:.1f} s (medians of {args.repeats}), ratio {b / a:.2f}x; "
        f"largest score difference {worst:.4f}; Avg {np.mean(list(reference.values())):.2f}"
    )
    print("runs (s): embedlab", [round(x, 1) for x in ours], "loop", [round(x, 1) for x in theirs])


if __name__ == "__main__":
    main()
