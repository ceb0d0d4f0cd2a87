"""Training throughput: embedlab's trainer against sentence-transformers' trainer, same work.

Both train the same student on the same (anchor, positive, hard negative) triplets, in the same
order, with the same batch size and InfoNCE over in-batch plus hard negatives:

- ours: ``embedlab.train.train`` over a batch file (plain, or GradCache with ``--chunk``);
- theirs: ``SentenceTransformerTrainer`` with ``MultipleNegativesRankingLoss`` (plain), or
  ``CachedMultipleNegativesRankingLoss`` (GradCache) with the same chunk.

Triplets are STS-B train pairs scored >= 3 (anchor, positive) with another pair's sentence as the
hard negative, from the mirror, or (``--data snli``) gold SNLI triplets (premise, entailment,
contradiction) as Study 3 trains on. ``--before`` adds a third side: embedlab without the short
``max_length`` and the length groups (the model's own 256 tokens, one forward per batch padded
to its longest text), so the record shows what those two settings buy. The sides take turns
going first, --repeats times, after a warm-up; each student writes
``results/train-<student>-b<B>[...].json`` with the medians of examples/s (and, for
transformers, model FLOPs utilisation when --peak-tflops is given, counting 6 x non-embedding
parameters x tokens per example, 8x with GradCache's extra forward).

    .venv/bin/python benchmarks/train_throughput.py --students static transformer
    .venv/bin/python benchmarks/train_throughput.py --device cuda --bf16 --peak-tflops 989
"""

import argparse
import logging
import statistics
import tempfile
import time

import numpy as np
import polars as pl
import torch
from record import Record, write

from embedlab.mine.batches import batch_table
from embedlab.resolve import resolve_file
from embedlab.sts_data import read_pair_file
from embedlab.train import TrainConfig, build_student, train

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DATA = {"stsb": "STS-B train", "snli": "gold SNLI"}
BEFORE = "embedlab, model's own max length, one forward per batch"


def triplets(mirror: str, n: int) -> pl.DataFrame:
    """(id, anchor, positive, hard_negative) rows as a Pairs table, from STS-B train."""
    s1, s2, gold = read_pair_file(resolve_file("sts/STSBenchmark/sts-train.csv", [mirror]), "stsb")
    keep = [i for i in range(len(gold)) if gold[i] >= 3.0][:n]
    if len(keep) < n:
        raise SystemExit(f"only {len(keep)} STS-B train pairs score >= 3; ask for fewer")
    rng = np.random.default_rng(0)
    other = rng.permutation(len(s1))
    return pl.DataFrame(
        {
            "id": [f"t{i}" for i in keep],
            "anchor": [s1[i] for i in keep],
            "positive": [s2[i] for i in keep],
            "hard_negative": [s2[other[i]] for i in keep],
            "mode": ["partial"] * n,
            "generator": ["sts-b"] * n,
            "prompt_id": ["none"] * n,
            "copy_similarity": [0.0] * n,
        }
    )


def snli(mirror: str, n: int) -> pl.DataFrame:
    """The first ``n`` gold SNLI triplets of the mirror's dev file, as a Pairs table."""
    from embedlab.synth import import_pairs

    pairs, _, _ = import_pairs("train/snli/dev.txt", layout="snli", mirrors=[mirror])
    if pairs.height < n:
        raise SystemExit(f"only {pairs.height} SNLI triplets; ask for fewer")
    return pairs.head(n)


def ours(kind: str, pairs: pl.DataFrame, args, before: bool = False) -> tuple[float, float]:
    """Seconds of embedlab's train(), and its tokens/s; ``before``: at the model's own
    max length, one forward per batch."""
    n = pairs.height // args.batch_size * args.batch_size
    order = [np.arange(n).reshape(-1, args.batch_size)]
    batches = batch_table(order, pairs["id"].to_list())
    max_length = None if before else args.max_length
    student = build_student(kind, args.model, max_length=max_length).to(args.device)
    tokens: list[float] = []
    config = TrainConfig(
        lr=args.lr,
        temperature=0.05,
        chunk_size=args.chunk,  # texts per forward, as mini_batch_size is theirs
        length_groups=1 if before else TrainConfig.length_groups,
        mixed_precision="bf16" if args.bf16 else "no",
    )
    started = time.perf_counter()
    train(student, pairs, batches, config, on_step=lambda s, m: tokens.append(m["tokens_per_s"]))
    return time.perf_counter() - started, float(np.median(tokens))


def theirs(kind: str, pairs: pl.DataFrame, args) -> float:
    """Seconds of SentenceTransformerTrainer.train() on the same triplets."""
    import datasets
    from sentence_transformers import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer import losses

    n = pairs.height // args.batch_size * args.batch_size
    data = datasets.Dataset.from_dict(
        {c: pairs[c].to_list()[:n] for c in ("anchor", "positive", "hard_negative")}
    )
    student = build_student(kind, args.model, max_length=args.max_length).to(args.device)
    if args.chunk:
        loss = losses.CachedMultipleNegativesRankingLoss(
            student, scale=20.0, mini_batch_size=args.chunk
        )
    else:
        loss = losses.MultipleNegativesRankingLoss(student, scale=20.0)
    with tempfile.TemporaryDirectory() as out:
        training = SentenceTransformerTrainingArguments(
            output_dir=out,
            per_device_train_batch_size=args.batch_size,
            num_train_epochs=1,
            learning_rate=args.lr,
            warmup_ratio=0.1,
            bf16=args.bf16,
            use_cpu=args.device == "cpu",
            report_to="none",
            save_strategy="no",
            logging_strategy="no",
            disable_tqdm=True,
            seed=0,
        )
        trainer = SentenceTransformerTrainer(
            model=student, args=training, train_dataset=data, loss=loss
        )
        started = time.perf_counter()
        trainer.train()
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mirror", default="../shared/data")
    parser.add_argument("--model", default=MODEL, help="the student's init model (id or folder)")
    parser.add_argument("--students", nargs="+", default=["static", "transformer"])
    parser.add_argument("--n", type=int, default=0, help="examples (default: 2048 static, 256)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--chunk", type=int, default=0, help="GradCache mini-batch (0: off)")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peak-tflops", type=float, help="device peak (H100 bf16: 989)")
    parser.add_argument("--data", choices=["stsb", "snli"], default="stsb")
    parser.add_argument("--before", action="store_true", help="add the side without max length")
    args = parser.parse_args()
    logging.disable(logging.WARNING)

    for kind in args.students:
        n = args.n or (2048 if kind == "static" else 256)
        pairs = (snli if args.data == "snli" else triplets)(args.mirror, n)
        a, b, c, tok = [], [], [], []
        warm = pairs.head(args.batch_size * 2)  # untimed: CUDA context, kernels, caches
        ours(kind, warm, args), theirs(kind, warm, args)
        sides = ["ours", "theirs", *(["before"] if args.before else [])]
        for i in range(args.repeats):  # rotating which side goes first
            for side in sides[i % len(sides) :] + sides[: i % len(sides)]:
                if side == "ours":
                    seconds, tokens_per_s = ours(kind, pairs, args)
                    a.append(n / seconds)
                    tok.append(tokens_per_s)
                elif side == "before":
                    c.append(n / ours(kind, pairs, args, before=True)[0])
                else:
                    b.append(n / theirs(kind, pairs, args))
        device = args.device + (" bf16" if args.bf16 else "")
        notes = f"embedlab {statistics.median(tok):,.0f} tokens/s."
        if args.peak_tflops and kind == "transformer":
            model = build_student(kind, args.model)
            body = sum(p.numel() for p in model.parameters())
            body -= model[0].auto_model.get_input_embeddings().weight.numel()
            flops = (8 if args.chunk else 6) * body * statistics.median(tok)
            notes += f" MFU {flops / (args.peak_tflops * 1e12):.1%} of {args.peak_tflops} TFLOPS."
        peer = (
            "CachedMultipleNegativesRankingLoss" if args.chunk else "MultipleNegativesRankingLoss"
        )
        write(
            Record(
                name=f"train-{kind}-b{args.batch_size}"
                + (f"-gc{args.chunk}" if args.chunk else "")
                + ("" if args.device == "cpu" else f"-{args.device}{'-bf16' if args.bf16 else ''}")
                + ("" if args.data == "stsb" else f"-{args.data}"),
                title=f"training a {kind} student"
                + (f", GradCache chunk {args.chunk}" if args.chunk else ""),
                peer=f"sentence-transformers trainer ({peer})",
                unit="examples/s",
                higher_is_better=True,
                sides={
                    "embedlab": {"median": statistics.median(a), "runs": a},
                    f"sentence-transformers trainer ({peer})": {
                        "median": statistics.median(b),
                        "runs": b,
                    },
                }
                | ({BEFORE: {"median": statistics.median(c), "runs": c}} if c else {}),
                setup=f"{n} {DATA[args.data]} triplets, {args.model.split('/')[-1]},"
                f" B={args.batch_size},"
                f" max {args.max_length} tokens, {device}",
                notes=notes,
            )
        )
    torch.cuda.empty_cache() if torch.cuda.is_available() else None


if __name__ == "__main__":
    main()
