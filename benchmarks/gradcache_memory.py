"""Peak memory of one training step with GradCache, against sentence-transformers' own.

Each (side, B) runs in a fresh process: all-MiniLM-L6-v2 as a transformer student, one batch
of B rows (anchor, positive, hard negative: 3B texts of STS-B train, max 32 tokens), one
forward/backward. The process's peak resident memory above what it held after loading the
model is the step's cost. The peer is ``CachedMultipleNegativesRankingLoss`` (GradCache in
sentence-transformers) with the same mini-batch; the plain step (every activation of 3B texts
kept for backward) runs beside it. Sides alternate, ``--repeats`` times per B; the record
(``results/gradcache-memory.json``) is the largest B of ``--sizes``, the others in its notes.

    .venv/bin/python benchmarks/gradcache_memory.py --sizes 64 256 --chunk 64
"""

import argparse
import json
import statistics
import subprocess
import sys
import time

from record import Record, write

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def status_mib(field: str) -> float:
    """VmRSS (resident now) or VmHWM (peak resident) of this process, in MiB."""
    with open("/proc/self/status") as f:
        line = next(x for x in f if x.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux clear_refs 5), so loading does not count."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def one(
    rows: int, chunk: int, mirror: str, device: str, model_name: str = MODEL, peer: bool = False
) -> dict[str, float]:
    """One step in this process (``peer``: sentence-transformers' cached loss); returns its
    memory and time figures."""
    import numpy as np
    import torch
    from accelerate import Accelerator

    from embedlab.resolve import resolve_file
    from embedlab.sts_data import read_pair_file
    from embedlab.train import TrainConfig, build_student
    from embedlab.train.loop import Step, backward

    s1, s2, _ = read_pair_file(resolve_file("sts/STSBenchmark/sts-train.csv", [mirror]), "stsb")
    other = np.random.default_rng(0).permutation(rows)
    step = Step(
        anchor=[s1[i % len(s1)] for i in range(rows)],
        positive=[s2[i % len(s2)] for i in range(rows)],
        negative=[s2[(i + 7) % len(s2)] for i in other],
        weight=None,
    )
    model = build_student("transformer", model_name, max_length=32).to(device)
    model.train()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    reset_peak()
    before = status_mib("VmRSS")
    started = time.perf_counter()
    if peer:
        from sentence_transformers.sentence_transformer.losses import (
            CachedMultipleNegativesRankingLoss,
        )

        loss_fn = CachedMultipleNegativesRankingLoss(model, mini_batch_size=chunk)
        features = [
            {k: v.to(device) if torch.is_tensor(v) else v for k, v in model.tokenize(texts).items()}
            for texts in (step.anchor, step.positive, step.negative)
        ]
        loss_fn(features, None).backward()
    else:
        accelerator = Accelerator(cpu=device == "cpu")
        backward(model, torch.nn.Identity(), step, TrainConfig(chunk_size=chunk), accelerator)
    seconds = time.perf_counter() - started
    peak = status_mib("VmHWM")
    out = {"rows": rows, "chunk": chunk, "seconds": seconds, "rss_after_load_mib": before}
    out |= {"peak_rss_mib": peak, "step_mib": peak - before}
    if device == "cuda":
        out["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--chunk", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mirror", default="../shared/data")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default=MODEL, help="the student (id or folder)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--peer", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        figures = one(args.one, args.chunk, args.mirror, args.device, args.model, args.peer)
        print(json.dumps(figures))
        return
    sides = {
        "embedlab": (args.chunk, False),
        "CachedMultipleNegativesRankingLoss": (args.chunk, True),
        "plain step": (0, False),
    }
    table = {}
    for rows in args.sizes:
        runs = {name: [] for name in sides}
        for i in range(args.repeats):
            for name in list(sides) if i % 2 == 0 else list(reversed(sides)):
                chunk, peer = sides[name]
                cmd = [sys.executable, __file__, "--one", str(rows), "--chunk", str(chunk)]
                cmd += ["--mirror", args.mirror, "--device", args.device, "--model", args.model]
                done = subprocess.run(
                    cmd + (["--peer"] if peer else []), capture_output=True, text=True
                )
                if done.returncode != 0:
                    raise SystemExit(f"B={rows} {name}: failed\n{done.stderr[-2000:]}")
                row = json.loads(done.stdout.strip().splitlines()[-1])
                key = "cuda_peak_mib" if "cuda_peak_mib" in row else "step_mib"
                runs[name].append(row[key])
                print(
                    f"B={rows:5d} {name:36s} +{row[key]:7.0f} MiB, {row['seconds']:.1f} s",
                    flush=True,
                )
        table[rows] = runs
    largest = max(args.sizes)
    others = "; ".join(
        f"B={b}: " + ", ".join(f"{n} {statistics.median(r):,.0f} MiB" for n, r in table[b].items())
        for b in sorted(table)
    )
    write(
        Record(
            name="gradcache-memory",
            title="peak memory of one GradCache step",
            peer="CachedMultipleNegativesRankingLoss",
            unit="MiB",
            higher_is_better=False,
            sides={
                n: {"median": statistics.median(r), "runs": [round(x) for x in r]}
                for n, r in table[largest].items()
            },
            setup=f"all-MiniLM-L6-v2, B={largest} rows (3B texts, max 32 tokens), mini-batch"
            f" {args.chunk}, {args.device}; the step's peak above the loaded model",
            notes=f"By batch size (medians): {others}.",
        )
    )


if __name__ == "__main__":
    main()
