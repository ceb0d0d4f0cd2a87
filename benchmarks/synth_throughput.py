"""Synthesis throughput: embedlab's synthesize() against batched transformers ``generate``.

All sides write a positive and a hard negative for the same WordNet anchors with the same
model, the same prompts (the pool is seeded per row), greedy decoding and the same parsing and
cheap filters (the teacher filter is off: generation only). The peer is what a user would write
with transformers: ``model.generate`` on left-padded batches of ``--batch-size`` prompts.
Beside it: one prompt at a time (``--naive-anchors`` rows), llama.cpp (``llama-cpp-python``
on the same GGUF file, one prompt at a time through its Python API) when it is installed, and
llama.cpp's own server with parallel slots and continuous batching (``--llama-server``: the
path of a ``llama-server`` binary), which embedlab's ``openai`` backend drives with as many
requests in flight as the server has slots. The sides alternate after a warm-up; medians of
rows/s (anchors finished per second), with tokens/s and accepted rows/s kept in the record.
Writes ``results/synth.json``.

    .venv/bin/python benchmarks/synth_throughput.py            # CPU, SmolLM2-135M-Instruct
    .venv/bin/python benchmarks/synth_throughput.py --device cuda --anchors 1024 --batch-size 128
"""

import argparse
import contextlib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import polars as pl
from record import Record, write

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
        max_attempts=1,  # one greedy ask per row, as the peers do
    )
    if hasattr(backend, "_cache"):
        backend._cache.clear()  # every measured run pays for its few-shot prefixes
    with tempfile.TemporaryDirectory() as shards:
        _, _, stats = synthesize(corpus, backend, pool, settings, Path(shards) / "s")
    return {k: stats[k] for k in ("tokens_per_s", "rows_per_s", "accepted_per_s")} | {
        "accepted_share": stats["accepted"] / stats["rows"]
    }


def _rows(corpus: pl.DataFrame, pool, generate, max_new_tokens: int, batch: int) -> dict:
    """Each anchor's two answers through ``generate(prompts, max_new_tokens)`` in batches of
    ``batch`` anchors, then the same parsing and cheap filters as synthesize()."""
    tokens, accepted, started = 0, 0, time.perf_counter()
    rows = list(corpus.iter_rows(named=True))
    f = Filters()
    for at in range(0, len(rows), batch):
        chunk = rows[at : at + batch]
        answers = {}
        for role in ("positive", "hard_negative"):
            prompts = [pool.messages(role, r["text"], r["id"], seed=0)[0] for r in chunk]
            done = generate(prompts, max_new_tokens)
            tokens += sum(d.tokens for d in done)
            answers[role] = [parse_answer(d.text, role) for d in done]
        for r, pos, neg in zip(chunk, answers["positive"], answers["hard_negative"], strict=True):
            reason = reject_reason(r["text"], pos, neg, f)
            accepted += reason is None
    seconds = time.perf_counter() - started
    return {
        "rows_per_s": len(rows) / seconds,
        "tokens_per_s": tokens / seconds,
        "accepted_per_s": accepted / seconds,
        "accepted_share": accepted / len(rows),
    }


def llama_cpp_generate(model_path: str, threads: int):
    """One prompt at a time through llama-cpp-python as a script would call it (in the given
    order), or None when it is not installed."""
    try:
        from llama_cpp import Llama
    except ImportError:
        return None
    from embedlab.synth.backends import Completion

    llm = Llama(model_path=model_path, n_ctx=2048, n_threads=threads, verbose=False, seed=0)

    def generate(conversations, max_new_tokens: int):
        out = []
        for turns in conversations:
            answer = llm.create_chat_completion(turns, max_tokens=max_new_tokens, temperature=0)
            out.append(
                Completion(
                    answer["choices"][0]["message"]["content"],
                    answer["usage"]["completion_tokens"],
                )
            )
        return out

    return generate


@contextlib.contextmanager
def llama_server(binary: str, model_path: str, slots: int, threads: int, context: int = 2048):
    """``llama-server`` on a free local port with ``slots`` parallel slots (continuous batching
    is its default), ``context`` tokens each; yields its OpenAI-compatible base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [binary, "-m", model_path, "--host", "127.0.0.1", "--port", str(port)]
    command += ["--parallel", str(slots), "--ctx-size", str(slots * context)]
    command += ["--threads", str(threads), "--seed", "0"]
    # its log goes to a file: a pipe nobody reads fills up and stalls the server mid-run
    log = tempfile.TemporaryFile()
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
    try:
        for _ in range(600):  # the model loads in seconds; a minute at most
            if server.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"llama-server exited: {log.read().decode()[-2000:]}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                    if r.status == 200:
                        break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"llama-server did not answer on port {port}")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.terminate()
        server.wait()
        log.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mirror", default="../shared/data")
    p.add_argument("--model", default="HuggingFaceTB/SmolLM2-135M-Instruct")
    p.add_argument("--prompt", default=str(HERE.parent / "config/prompts/partial.yaml"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--anchors", type=int, default=128, help="rows of the batched sides")
    p.add_argument("--naive-anchors", type=int, default=16, help="rows of the one-at-a-time sides")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--llama-server", help="a llama-server binary: adds llama.cpp's server side")
    args = p.parse_args()
    backend = TransformersBackend(args.model, [args.mirror], device=args.device)
    pool = PromptPool.load(args.prompt)
    corpus = corpus_from(args.mirror, args.anchors)
    few = corpus.sample(args.naive_anchors, seed=0)

    def templated(conversations, n):
        return backend.generate([backend.prompt(c) for c in conversations], n)

    sides = {
        "embedlab": lambda: batched(backend, pool, corpus, args.batch_size, args.max_new_tokens),
        "transformers generate (batched)": lambda: _rows(
            corpus, pool, templated, args.max_new_tokens, args.batch_size
        ),
        "transformers generate (one prompt at a time)": lambda: _rows(
            few, pool, templated, args.max_new_tokens, 1
        ),
    }
    import torch

    from embedlab.resolve import resolve_model

    found = resolve_model(args.model, [args.mirror])
    threads = torch.get_num_threads()
    left_out = []  # sides this run could not have, said on stderr and in the record
    if found.gguf_file and args.device == "cpu":
        llama = llama_cpp_generate(str(Path(found.path) / found.gguf_file), threads)
        if llama is None:
            left_out.append("llama.cpp in-process (llama-cpp-python is not installed)")
        else:
            from embedlab.synth.backends import LlamaCppBackend

            ours_llama = LlamaCppBackend(args.model, [args.mirror])
            sides["embedlab, llama.cpp backend"] = lambda: batched(
                ours_llama, pool, corpus, args.batch_size, args.max_new_tokens
            )
            sides["llama-cpp-python (one prompt at a time)"] = lambda: _rows(
                few, pool, llama, args.max_new_tokens, 1
            )
    if found.gguf_file and args.llama_server:
        from embedlab.synth.openai_http import OpenAIBackend

        def served() -> dict:
            """A fresh server per run, started before synthesize() times anything: its slots'
            prompt cache would otherwise hold this run's prompts from the last (embedlab's
            backend clears its prefix cache per run too)."""
            gguf = str(Path(found.path) / found.gguf_file)
            with llama_server(args.llama_server, gguf, args.batch_size, threads) as url:
                backend = OpenAIBackend(
                    args.model, url, api_key_env=None, concurrency=args.batch_size, timeout_s=600
                )
                return batched(backend, pool, corpus, args.batch_size, args.max_new_tokens)

        sides[f"embedlab, openai backend on llama-server ({args.batch_size} slots)"] = served
    elif found.gguf_file:
        left_out.append("llama-server (no --llama-server binary given)")
    for side_name in left_out:
        print(f"warning: side left out: {side_name}", file=sys.stderr)
    # warm-up (weights, kernels, the few-shot prefixes' first encoding)
    for fn in sides.values():
        fn()
    runs: dict[str, list[dict]] = {name: [] for name in sides}
    for i in range(args.repeats):
        for name in list(sides) if i % 2 == 0 else list(reversed(sides)):
            runs[name].append(sides[name]())

    def side(name: str) -> dict:
        figures = {k: statistics.median(r[k] for r in runs[name]) for k in runs[name][0]}
        return {
            "median": figures["rows_per_s"],
            "runs": [round(r["rows_per_s"], 3) for r in runs[name]],
            **{k: round(v, 3) for k, v in figures.items() if k != "rows_per_s"},
        }

    results = {name: side(name) for name in sides}
    tokens = ", ".join(f"{n} {r['tokens_per_s']:.1f}" for n, r in results.items())
    accepted = ", ".join(f"{n} {r['accepted_share']:.0%}" for n, r in results.items())
    write(
        Record(
            name="synth",
            title="LLM synthesis (partial mode)",
            peer="transformers generate (batched)",
            unit="rows/s",
            higher_is_better=True,
            sides=results,
            setup=f"{args.anchors} WordNet anchors ({args.naive_anchors} for one-at-a-time"
            f" sides), {args.model.split('/')[-1]} (GGUF Q4_1), {args.device}, batch"
            f" {args.batch_size}, at most {args.max_new_tokens} new tokens, greedy",
            notes=f"Generated tokens/s: {tokens}. Share of rows accepted by the cheap filters"
            f" (the answers' quality): {accepted}."
            + "".join(f" Left out: {name}." for name in left_out),
        )
    )


if __name__ == "__main__":
    main()
