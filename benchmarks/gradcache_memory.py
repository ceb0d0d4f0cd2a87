"""Peak memory of one training step against the batch size, with and without GradCache.

Each (setting, B) runs in a fresh process: all-MiniLM-L6-v2 as a transformer student, one mined
batch of B rows (anchor, positive, hard negative: 3B texts of STS-B train, max 32 tokens),
one forward/backward. The process's peak resident memory above what it held after loading the
model is the step's cost. The plain step's cost grows with B (every activation of 3B texts is
kept for backward); GradCache's stays nearly flat (one chunk's activations plus the [3B, 384]
embeddings).

    .venv/bin/python benchmarks/gradcache_memory.py --sizes 64 256 1024 4096 --plain-up-to 1024
"""

import argparse
import json
import subprocess
import sys
import time

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
    rows: int, chunk: int, mirror: str, device: str, model_name: str = MODEL
) -> dict[str, float]:
    """One step in this process; returns its memory and time figures."""
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
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 1024, 4096])
    parser.add_argument("--chunk", type=int, default=64)
    parser.add_argument("--plain-up-to", type=int, default=1024, help="largest B without cache")
    parser.add_argument("--mirror", default="../shared/data")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default=MODEL, help="the student (id or folder)")
    parser.add_argument("--json", help="write the figures here too")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(one(args.one, args.chunk, args.mirror, args.device, args.model)))
        return
    figures = []
    for rows in args.sizes:
        for chunk in (args.chunk, 0):
            if chunk == 0 and rows > args.plain_up_to:
                continue
            cmd = [sys.executable, __file__, "--one", str(rows), "--chunk", str(chunk)]
            cmd += ["--mirror", args.mirror, "--device", args.device, "--model", args.model]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"B={rows} chunk={chunk}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            figures.append(row)
            label = f"GradCache chunk {chunk}" if chunk else "plain"
            extra = f", CUDA peak {row['cuda_peak_mib']:.0f} MiB" if "cuda_peak_mib" in row else ""
            print(
                f"B={rows:5d} {label:20s} step +{row['step_mib']:7.0f} MiB "
                f"(peak RSS {row['peak_rss_mib']:.0f} MiB){extra}, {row['seconds']:.1f} s",
                flush=True,
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1)


if __name__ == "__main__":
    main()
