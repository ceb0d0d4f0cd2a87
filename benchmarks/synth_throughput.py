"""Synthesis throughput: embedlab's batched synthesize() against a naive generate loop.

Both sides use the same model, the same prompt pool and the same sampled prompts (the pool is
seeded per row) and greedy decoding; the naive side sends one prompt at a time to
``model.generate``, as a first script would. Printed: generated tokens/s and rows/s (anchors
finished per second) and accepted rows/s (after the same parsing and cheap filters) of each
side, and their ratios, medians over ``--repeats`` alternating
runs. The teacher filter is off on the batched side so that both measure generation only.

    .venv/bin/python benchmarks/synth_throughput.py            # CPU, SmolLM2-135M-Instruct
    .venv/bin/python benchmarks/synth_throughput.py --device cuda --anchors 1024 --batch-size 128
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import polars as pl

from embedlab.ids import stable_id
from embedlab.synth import PromptPool, SynthSettings, synthesize
from embedlab.synth.backends import TransformersBackend
from embedlab.synth.filters import Filters, parse_answer, reject_reason

HERE = Path(__file__).resolve().parent


def corpus_from(mirror: str, n: int) -> pl.DataFrame:
    lines = [t.strip() for t in (Path(mirror) / "corpus/wordnet-examples.txt").open() if t.strip()]
    texts = sorted(set(lines[:: max(1, len(lines) // (2 * n))]))[:n]
    return pl.DataFrame({"id": [stable_id(t, "w") for t in texts], "text": texts, "source": "w"})


def batched(backend, pool, corpus, batch_size: int, max_new_tokens: int) -> dict[str, float]:
    settings = SynthSettings(
        n_anchors=corpus.height,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        teacher_margin=None,
    )
    backend._cache.clear()  # every measured run pays for its few-shot prefixes
    with tempfile.TemporaryDirectory() as shards:
        _, _, stats = synthesize(corpus, backend, pool, settings, Path(shards) / "s")
    return {k: stats[k] for k in ("tokens_per_s", "rows_per_s", "accepted_per_s")}


def naive(backend, pool, corpus, max_new_tokens: int) -> dict[str, float]:
    """One prompt at a time, same prompts as synthesize() samples for these rows, the same
    parsing and cheap filters (the teacher filter is off on both sides)."""
    tokens, accepted, started = 0, 0, time.perf_counter()
    for row in corpus.iter_rows(named=True):
        answers = {}
        for role in ("positive", "hard_negative"):
            turns, _ = pool.messages(role, row["text"], row["id"], seed=0)
            [answer] = backend.generate([backend.prompt(turns)], max_new_tokens)
            tokens += answer.tokens
            answers[role] = parse_answer(answer.text, role)
        f = Filters()
        reason = reject_reason(
            row["text"], answers["positive"], answers["hard_negative"],
            f.copy_threshold, f.min_chars, f.max_chars,
        )  # fmt: skip
        accepted += reason is None
    seconds = time.perf_counter() - started
    return {
        "tokens_per_s": tokens / seconds,
        "rows_per_s": corpus.height / seconds,
        "accepted_per_s": accepted / seconds,
    }


def compare(
    backend, pool, corpus, naive_rows: int, batch_size: int, max_new_tokens: int, repeats: int
):
    batched(backend, pool, corpus.head(batch_size), batch_size, max_new_tokens)  # warm-up
    ours, theirs = [], []
    for _ in range(repeats):
        ours.append(batched(backend, pool, corpus, batch_size, max_new_tokens))
        theirs.append(naive(backend, pool, corpus.sample(naive_rows, seed=0), max_new_tokens))
    med = {
        side: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        for side, runs in (("batched", ours), ("naive", theirs))
    }
    med["ratio"] = {  # inf where the naive side's few rows had none accepted
        k: med["batched"][k] / med["naive"][k] if med["naive"][k] else float("inf")
        for k in med["batched"]
    }
    return med


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mirror", default="../shared/data")
    p.add_argument("--model", default="HuggingFaceTB/SmolLM2-135M-Instruct")
    p.add_argument("--prompt", default=str(HERE.parent / "config/prompts/partial.yaml"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--anchors", type=int, default=256, help="rows of the batched side")
    p.add_argument("--naive-anchors", type=int, default=16, help="rows of the naive side")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    backend = TransformersBackend(args.model, [args.mirror], device=args.device)
    pool = PromptPool.load(args.prompt)
    corpus = corpus_from(args.mirror, args.anchors)
    med = compare(
        backend,
        pool,
        corpus,
        args.naive_anchors,
        args.batch_size,
        args.max_new_tokens,
        args.repeats,
    )
    for side in ("batched", "naive"):
        m = med[side]
        print(
            f"{side:8s} {m['tokens_per_s']:8.1f} tokens/s  {m['rows_per_s']:6.2f} rows/s  "
            f"{m['accepted_per_s']:6.2f} accepted/s (median of {args.repeats})"
        )
    r = med["ratio"]
    print(
        f"ratio    {r['tokens_per_s']:.2f}x tokens/s, {r['rows_per_s']:.2f}x rows/s, "
        f"{r['accepted_per_s']:.2f}x accepted/s  (batch {args.batch_size}, device {args.device})"
    )


if __name__ == "__main__":
    main()
