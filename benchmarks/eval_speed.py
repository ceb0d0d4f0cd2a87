"""STS evaluation speed: embedlab's evaluate_sts against mteb.evaluate, same model, same pairs.

The peer is what researchers run: ``mteb.evaluate`` with the sentence-transformers model on the
seven STS test sets (STS12-16, STS-B, SICK-R), built from the mirror as MTEB tasks (mteb's
own code from there on: its encoding, its metrics). Beside it, a plain loop of ``model.encode``
per task and column. All three must give the same Spearman (to 0.05 points; mteb pools a year's
subsets as SentEval "all" does). The sides alternate after a warm-up; medians of
``--repeats``. Writes ``results/eval.json``.

    .venv/bin/python benchmarks/eval_speed.py --mirror ../shared/data --repeats 3
"""

import argparse
import warnings

import mteb
import numpy as np
from record import Record, alternate, seconds, write
from scipy.stats import spearmanr

from embedlab.encode import encode, load_encoder
from embedlab.evaluate import STS_TASKS, evaluate_sts, load_sts
from embedlab.evaluate.mteb_adapter import mirror_sts_task


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
    warnings.filterwarnings("ignore")

    names = list(STS_TASKS)
    tasks = [load_sts(t, [args.mirror]) for t in names]
    model = load_encoder("sentence-transformers/all-MiniLM-L6-v2", device="cpu")
    got: dict[str, dict[str, float]] = {}

    def ours() -> None:
        scores = evaluate_sts(model, tasks, args.batch_size, progress=False)
        pooled = scores.filter(scores["metric"] == "spearman")
        got["embedlab"] = dict(zip(pooled["task"], pooled["value"], strict=True))

    def peer() -> None:
        mirror = [mirror_sts_task(t, [args.mirror]) for t in names]
        result = mteb.evaluate(
            model,
            mirror,
            cache=None,
            show_progress_bar=False,
            encode_kwargs={"batch_size": args.batch_size},
        )
        got["mteb"] = {
            name: r.scores["test"][0]["main_score"] * 100
            for name, r in zip(names, result.task_results, strict=True)
        }

    def loop() -> None:
        got["loop"] = plain_loop(model, tasks, args.batch_size)

    encode(model, tasks[0].s1[:256], args.batch_size)  # load and warm the model once
    runs = alternate({"embedlab": ours, "mteb": peer, "loop": loop}, args.repeats, warmup=0)
    worst = max(abs(got[side][t] - got["embedlab"][t]) for side in ("mteb", "loop") for t in names)
    assert worst < 0.05, f"the sides disagree by {worst:.4f} Spearman points"
    n_pairs = sum(len(t.gold) for t in tasks)
    n_unique = len({s for t in tasks for s in (*t.s1, *t.s2)})
    write(
        Record(
            name="eval",
            title="STS evaluation (7 test sets)",
            peer="mteb",
            unit="s",
            higher_is_better=False,
            sides={
                "embedlab": seconds(runs["embedlab"]),
                "mteb": seconds(runs["mteb"]),
                "plain encode loop": seconds(runs["loop"]),
            },
            setup=f"{n_pairs} pairs ({n_unique} distinct sentences), all-MiniLM-L6-v2, CPU,"
            f" batch {args.batch_size}",
            notes=f"Same scores on all three sides (largest difference {worst:.4f} points; "
            f"Avg {np.mean(list(got['embedlab'].values())):.2f}). embedlab encodes each distinct"
            " sentence once, in token-length order, in batches of a token budget.",
        )
    )


if __name__ == "__main__":
    main()
