"""Synthesis yield and cost by ``max_attempts``: on Study 1's 2,000 SNLI premises, the share
that gets an accepted pair from the packaged SmolLM2-135M-Instruct, and the generated tokens and
minutes per accepted pair, after 1, 2 and 4 attempts (no filter loosened).

A run of k attempts is exactly the first k rounds of a longer run (``synth.generate``: each
round reads only the rounds before it; ``tests/test_synth_generate.py`` holds it), so one run of
the largest count gives every row of the record. The settings and the premises are the study's
(``config/studies/syncse/base.yaml`` and ``llm.yaml``, read here, not copied), and the run goes
through the same synthesis cache (``results/cache/synth``): after ``make study-syncse`` in this
checkout it reads the study's entry, and its minutes are those of the study's synthesize job
(the record says so: ``cache_hit``); run on a quiet machine either way. Writes
``results/synth-yield.json``.

    .venv/bin/python benchmarks/synth_yield.py
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml
from record import RESULTS, commit, machine

from embedlab.contracts import attempt_metric
from embedlab.corpus.build import Source, build_corpus
from embedlab.settings import from_config
from embedlab.settings.corpus import CorpusSettings
from embedlab.settings.synthesize import SynthesizeSettings
from embedlab.synth import PromptPool, SynthSettings, make_backend, synthesize
from embedlab.synth.generate import Teacher

HERE = Path(__file__).resolve().parent
STUDY = HERE.parent / "config/studies/syncse"


def study_config() -> dict:
    """Study 1's LLM arm: base.yaml with llm.yaml over it (the sections this stage reads)."""
    base = yaml.safe_load((STUDY / "base.yaml").read_text())
    arm = yaml.safe_load((STUDY / "llm.yaml").read_text())
    return {k: base.get(k, {}) | arm.get(k, {}) for k in ("corpus", "synthesize")}


def rows(stats: dict, premises: int, counts: list[int]) -> list[dict]:
    """The record's rows: after each of ``counts`` attempts, what the first rounds gave."""
    out = []
    for k in counts:
        rounds = range(1, k + 1)
        accepted = sum(stats.get(attempt_metric("accepted", a), 0.0) for a in rounds)
        tokens = sum(stats.get(attempt_metric("tokens", a), 0.0) for a in rounds)
        seconds = sum(stats.get(attempt_metric("seconds", a), 0.0) for a in rounds)
        out.append(
            {
                "max_attempts": k,
                "premises": premises,
                "accepted": int(accepted),
                "share": accepted / premises,
                "tokens": int(tokens),
                "tokens_per_accepted": tokens / max(accepted, 1),
                "minutes": seconds / 60,
            }
        )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mirror", default="../shared/data")
    p.add_argument("--attempts", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--cache", default="results/cache/synth", help="the workflow's synthesis cache")
    p.add_argument("--seed", type=int, default=0, help="the study's seed (config key seed)")
    args = p.parse_args()
    config = study_config()
    corpus_settings = from_config(CorpusSettings, config["corpus"], seed=args.seed)
    corpus, _ = build_corpus(
        [Source(**s) for s in corpus_settings.sources],
        [args.mirror],
        corpus_settings.max_sentences,
        corpus_settings.min_chars,
        corpus_settings.max_chars,
        corpus_settings.seed,
    )
    s = from_config(
        SynthesizeSettings, config["synthesize"], seed=args.seed, max_attempts=max(args.attempts)
    )
    pool = PromptPool.load(s.prompt or HERE.parent / f"config/prompts/{s.mode}.yaml")
    backend = make_backend(s.backend, s.model, [args.mirror], s.seed, device=s.device)
    teacher = Teacher.load(s.teacher, [args.mirror])
    with tempfile.TemporaryDirectory() as shards:
        pairs, _, stats = synthesize(
            corpus,
            backend,
            pool,
            SynthSettings.of(s),
            Path(shards) / "s",
            teacher,
            cache=args.cache,
        )
    premises = int(stats["rows"])
    source = (
        "read from the study's cache entry, so they are the minutes of the run that made it"
        if stats["cache_hit"]
        else "measured by this command"
    )
    out = {
        "name": "synth-yield",
        "kind": "yield",
        "title": "synthesis yield and cost by max_attempts",
        "setup": (
            f"{premises:,} SNLI premises (Study 1), {Path(s.model).name}, {s.backend} backend, "
            f"batch {s.batch_size}, {s.max_new_tokens} new tokens; attempt 1 greedy, then "
            f"temperature {s.retry_temperature:g}, top-p {s.retry_top_p:g}; the study's filters "
            f"(copy {s.copy_threshold:g}, teacher margin {s.teacher_margin:g})"
        ),
        "notes": f"Minutes: the synthesize run's own (generation and filters), {source}.",
        "cache_hit": bool(stats["cache_hit"]),
        "rows": rows(stats, premises, sorted(args.attempts)),
        "command": " ".join(["python", *sys.argv]),
        "commit": commit(),
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "synth-yield.json"
    path.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    for r in out["rows"]:
        print(
            f"max_attempts {r['max_attempts']}: {r['accepted']}/{r['premises']} "
            f"({100 * r['share']:.0f}%), {r['tokens_per_accepted']:.0f} tokens per accepted "
            f"pair, {r['minutes']:.1f} min",
            file=sys.stderr,
        )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
