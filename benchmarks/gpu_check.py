"""The GPU paths in one short run: bf16 training, GradCache equality, generation, throughput.

    python benchmarks/gpu_check.py --mirror ../shared/data --out gpu-check

1. bf16: a transformer student trains 32 steps of B=64 under bf16 autocast; loss must fall.
2. GradCache: gradients of one B=128 step with chunks of 32 against the full batch, float32 and
   bf16 (dropout off), as |difference| / |gradient| over all parameters (L2 and max).
3. Generation: synthesize() (batched, left-padded) against a naive one-prompt-at-a-time loop,
   same model and prompts: generated tokens/s and the ratio.
4. Throughput and memory: benchmarks/train_throughput.py (against sentence-transformers'
   trainer, with MFU) and benchmarks/gradcache_memory.py on the GPU.

``--random-encoder CONFIG_DIR`` / ``--random-llm CONFIG_DIR`` build the models from a config and
tokenizer with random weights (same shapes, so the same speed; scores mean nothing) where the
weights cannot be present, as on a machine without network.
"""

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).parent


def random_model(config_dir: str, out: Path, causal: bool) -> str:
    """Save a randomly initialised model of ``config_dir``'s config (and its tokenizer)."""
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(config_dir)
    model = (AutoModelForCausalLM if causal else AutoModel).from_config(config)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(config_dir).save_pretrained(out)
    return str(out)


def triplet_steps(mirror: str, rows: int, batch: int):
    from embedlab.resolve import resolve_file
    from embedlab.sts_data import read_pair_file
    from embedlab.train.loop import Step

    s1, s2, _ = read_pair_file(resolve_file("sts/STSBenchmark/sts-train.csv", [mirror]), "stsb")
    steps = []
    for start in range(0, rows, batch):
        idx = range(start, start + batch)
        steps.append(
            Step(
                anchor=[s1[i] for i in idx],
                positive=[s2[i] for i in idx],
                negative=[s2[(i * 7 + 3) % len(s2)] for i in idx],
                weight=None,
            )
        )
    return steps


def setup(args) -> tuple[str, int, Callable[[], None]]:
    device = args.device
    assert device == "cpu" or torch.cuda.is_available(), "no GPU visible to torch"
    k = 16 if args.small else 1  # the smoke test divides every size by k
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    return device, k, sync


def part_train(args, report: dict) -> None:
    """bf16 training steps of a transformer student with SimCSE's cls_mlp pooling."""
    import polars as pl

    from embedlab.mine.batches import batch_table
    from embedlab.train import TrainConfig, build_student, train, train_head

    device, k, sync = setup(args)
    encoder = args.encoder
    steps = triplet_steps(args.mirror, 64 * 32 // k, 64)
    rows = [
        {"id": f"r{i}", "anchor": a, "positive": p, "hard_negative": n}
        for i, (a, p, n) in enumerate(
            (a, p, n)
            for s in steps
            for a, p, n in zip(s.anchor, s.positive, s.negative, strict=True)
        )
    ]
    pairs = pl.DataFrame(rows).with_columns(
        mode=pl.lit("partial"),
        generator=pl.lit("sts-b"),
        prompt_id=pl.lit("none"),
        copy_similarity=pl.lit(0.0),
    )
    batches = batch_table([np.arange(len(rows)).reshape(-1, 64)], pairs["id"].to_list())
    student = build_student("transformer", encoder, max_length=64, pooling="cls_mlp")
    head = train_head(student, "cls_mlp")
    seen: list[dict] = []
    config = TrainConfig(lr=5e-5, temperature=0.05, mixed_precision="bf16", warmup_ratio=0.1)
    started = time.perf_counter()
    train(student, pairs, batches, config, lambda s, m: seen.append(m), head)
    sync()
    report["bf16_train"] = {
        "steps": len(seen),
        "batch": 64,
        "loss_first4": float(np.mean([m["loss"] for m in seen[:4]])),
        "loss_last4": float(np.mean([m["loss"] for m in seen[-4:]])),
        "median_examples_per_s": float(np.median([m["examples_per_s"] for m in seen[2:] or seen])),
        "median_tokens_per_s": float(np.median([m["tokens_per_s"] for m in seen[2:] or seen])),
        "seconds": time.perf_counter() - started,
        "finite": bool(all(np.isfinite(m["loss"]) for m in seen)),
    }
    print("bf16 training:", report["bf16_train"], flush=True)


def part_gradcache(args, report: dict) -> None:
    """GradCache against the full batch, in this process's one precision (accelerate's state
    cannot change precision within a process)."""
    from accelerate import Accelerator

    from embedlab.train import TrainConfig, build_student
    from embedlab.train.loop import backward

    device, k, sync = setup(args)
    encoder = args.encoder
    precision = args.precision
    step = triplet_steps(args.mirror, 128, 128)[0]
    if True:
        grads = []
        for chunk in (0, 32):
            model = build_student("transformer", encoder, max_length=64, pooling="mean")
            model.to(device).eval()  # dropout off: the two must agree exactly up to rounding
            cfg = TrainConfig(chunk_size=chunk, mixed_precision=precision)
            accelerator = Accelerator(cpu=device == "cpu", mixed_precision=precision)
            loss, _ = backward(model, torch.nn.Identity(), step, cfg, accelerator)
            named = model.named_parameters()
            grads.append({n: p.grad.float().clone() for n, p in named if p.grad is not None})
        full = torch.cat([g.flatten() for g in grads[0].values()])
        cached = torch.cat([grads[1][name].flatten() for name in grads[0]])
        # over the whole gradient: some tensors' true gradient is 0 (attention key biases), so
        # a per-tensor ratio would divide rounding noise by rounding noise
        rel_l2 = float((cached - full).norm() / full.norm())
        rel_max = float((cached - full).abs().max() / full.abs().max())
        report[f"gradcache_{precision}"] = {"rel_l2": rel_l2, "rel_max": rel_max}
        print(f"GradCache vs full batch ({precision}): relative L2 {rel_l2:.2e}, max {rel_max:.2e}")


def part_generation(args, report: dict) -> None:
    """Batched synthesize() against a naive one-prompt-at-a-time loop, same model and prompts."""
    from synth_throughput import compare, corpus_from

    from embedlab.synth import PromptPool
    from embedlab.synth.backends import TransformersBackend

    device, k, _ = setup(args)
    name = args.llm
    if args.random_llm:
        name = str(random_model(args.random_llm, Path(args.out) / "llm", causal=True))
    backend = TransformersBackend(name, [args.mirror], device=device)
    pool = PromptPool.load(HERE.parent / "config/prompts/partial.yaml")
    corpus = corpus_from(args.mirror, 1024 // k)
    med = compare(backend, pool, corpus, 16 // k, 128 // k, 48, repeats=1)
    report["generation"] = {
        "batched_tokens_per_s": med["batched"]["tokens_per_s"],
        "batched_rows_per_s": med["batched"]["rows_per_s"],
        "naive_tokens_per_s": med["naive"]["tokens_per_s"],
        "ratio_tokens": med["ratio"]["tokens_per_s"],
        "ratio_rows": med["ratio"]["rows_per_s"],
        "batch": 128 // k,
        "weights": "random" if args.random_llm else "trained",
    }
    print("generation:", report["generation"], flush=True)


PARTS = {
    "train": part_train,
    "gradcache-no": part_gradcache,
    "gradcache-bf16": part_gradcache,
    "generation": part_generation,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mirror", default="../shared/data")
    parser.add_argument("--encoder", default="sentence-transformers/all-MiniLM-L6-v2")
    parser.add_argument("--llm", default="HuggingFaceTB/SmolLM2-135M-Instruct")
    parser.add_argument("--random-encoder", help="config+tokenizer folder: random weights")
    parser.add_argument("--random-llm", help="config+tokenizer folder: random weights")
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="H100 SXM bf16 dense")
    parser.add_argument("--out", default="gpu-check")
    parser.add_argument("--device", default="cuda", help="cpu: a smoke test of this script")
    parser.add_argument("--small", action="store_true", help="tiny sizes, for a smoke test")
    parser.add_argument("--part", choices=sorted(PARTS), help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="no", help=argparse.SUPPRESS)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.part:  # one part, in its own process
        report: dict = {}
        PARTS[args.part](args, report)
        (out / f"part-{args.part}.json").write_text(json.dumps(report, indent=1))
        return

    device, k, _ = setup(args)
    report = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "torch": torch.__version__,
        "random_weights": bool(args.random_encoder or args.random_llm),
    }
    encoder = args.encoder
    if args.random_encoder:
        encoder = random_model(args.random_encoder, out / "encoder", causal=False)
    forward = [sys.argv[0], "--mirror", args.mirror, "--encoder", encoder, "--llm", args.llm]
    forward += ["--out", str(out), "--device", device] + (["--small"] if args.small else [])
    forward += ["--random-llm", args.random_llm] if args.random_llm else []
    for part in PARTS:
        extra = ["--precision", part.removeprefix("gradcache-")] if "gradcache" in part else []
        subprocess.run([sys.executable, *forward, "--part", part, *extra], check=False)
        if (found := out / f"part-{part}.json").exists():
            report[part] = json.loads(found.read_text())
    (out / "gpu_check.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1), flush=True)

    # 4. throughput against sentence-transformers, and GradCache memory, on the GPU
    common = ["--mirror", args.mirror, "--model", encoder, "--device", device]
    n, peak = str(2048 // k), ["--peak-tflops", str(args.peak_tflops)]
    sizes = ["64", "256"] if args.small else ["64", "256", "1024", "4096"]
    runs = [
        ["train_throughput.py", "--students", "transformer", "--bf16", "--repeats", "2"]
        + ["--batch-size", str(128 // k), "--n", n, *peak, "--json", str(out / "tp.json")],
        ["train_throughput.py", "--students", "transformer", "--bf16", "--repeats", "2"]
        + ["--batch-size", str(512 // k), "--n", n, "--chunk", str(128 // k), *peak]
        + ["--json", str(out / "tp_cached.json")],
        ["gradcache_memory.py", "--sizes", *sizes, "--plain-up-to", "4096"]
        + ["--chunk", str(128 // k), "--json", str(out / "memory.json")],
    ]
    for run in runs:
        cmd = [sys.executable, str(HERE / run[0]), *run[1:], *common]
        print("$", " ".join(cmd[1:]), flush=True)
        subprocess.run(cmd, check=False)


if __name__ == "__main__":
    main()
