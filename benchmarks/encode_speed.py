"""Encoding throughput: embedlab.encode against SentenceTransformer.encode, each at its best
batch size.

The two sides count a batch differently (sentence-transformers: sentences; embedlab: a budget
of ``batch_size`` x 32 padded tokens), so a shared ``--batch-size`` would compare unlike
settings. Each side first runs every size of ``--sizes`` (alternating, ``--sweep-repeats``
each); then each side's fastest size runs ``--repeats`` more times, alternating. Both embed
the same sentences (a sample of the distinct STS test sentences) with all-MiniLM-L6-v2 on the
CPU, and must agree to 1e-4. Writes ``results/encode.json``.

    .venv/bin/python benchmarks/encode_speed.py --mirror ../shared/data
"""

import argparse
import statistics

import numpy as np
import torch
from record import Record, alternate, per_second, write

from embedlab.encode import encode, load_encoder
from embedlab.sts_data import STS_TASKS, load_sts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mirror", default="../shared/data")
    parser.add_argument("--limit", type=int, default=3000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64, 128, 256])
    parser.add_argument("--sweep-repeats", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    tasks = [load_sts(t, [args.mirror]) for t in STS_TASKS]
    texts = sorted({s for t in tasks for s in (*t.s1, *t.s2)})
    texts = [texts[i] for i in np.random.default_rng(0).permutation(len(texts))[: args.limit]]
    model = load_encoder("sentence-transformers/all-MiniLM-L6-v2", device="cpu")

    def ours(size: int):
        return lambda: encode(model, texts, size)

    def theirs(size: int):
        return lambda: model.encode(texts, batch_size=size, normalize_embeddings=True)

    assert np.abs(ours(64)() - theirs(64)()).max() < 1e-4, "the two encoders disagree"
    sweep = {}
    for size in args.sizes:
        runs = alternate({"embedlab": ours(size), "st": theirs(size)}, args.sweep_repeats, 0)
        sweep[size] = {side: statistics.median(r) for side, r in runs.items()}
    best_ours = min(args.sizes, key=lambda s: sweep[s]["embedlab"])
    best_theirs = min(args.sizes, key=lambda s: sweep[s]["st"])
    runs = alternate(
        {"embedlab": ours(best_ours), "sentence-transformers": theirs(best_theirs)}, args.repeats
    )
    n = len(texts)
    table = ", ".join(
        f"{s}: {n / sweep[s]['embedlab']:.0f} vs {n / sweep[s]['st']:.0f}" for s in args.sizes
    )
    write(
        Record(
            name="encode",
            title="encoding, each side at its best batch size",
            peer="sentence-transformers",
            unit="sentences/s",
            higher_is_better=True,
            sides={
                "embedlab": per_second(runs["embedlab"], n) | {"batch_size": best_ours},
                "sentence-transformers": per_second(runs["sentence-transformers"], n)
                | {"batch_size": best_theirs},
            },
            setup=f"{n} distinct STS sentences, all-MiniLM-L6-v2, CPU, {torch.get_num_threads()}"
            f" threads; batch {best_ours} (embedlab, x32 tokens) vs {best_theirs} sentences",
            notes=f"Sweep, sentences/s embedlab vs sentence-transformers by batch size: {table}.",
        )
    )


if __name__ == "__main__":
    main()
