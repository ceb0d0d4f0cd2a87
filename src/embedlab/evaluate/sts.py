"""STS evaluation as SimCSE/SentEval report it ("all" setting).

STS12-16: every subset of a year pooled into one list, one Spearman correlation of cosine
similarity against gold over it. STS-B and SICK-R: the test split. Scores are Spearman x 100.
Files are read from a mirror in SentEval's ``data/downstream/STS`` layout; without one, the
public hub copies (``mteb/sts12-sts`` ...) are read with ``datasets``.

Example::

    pairs = load_sts("STSBenchmark", mirrors=["../shared/data"])
    scores = evaluate_sts(model, [pairs])
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from scipy.stats import spearmanr
from sentence_transformers import SentenceTransformer

from embedlab.encode import encode
from embedlab.resolve import NotFound, resolve_file
from embedlab.schemas import DataError, Scores, polars_schema

# task name -> (mirror folder, hub id, subsets of the folder or None for a fixed split file)
STS_TASKS: dict[str, tuple[str, str]] = {
    "STS12": ("sts/STS12-en-test", "mteb/sts12-sts"),
    "STS13": ("sts/STS13-en-test", "mteb/sts13-sts"),
    "STS14": ("sts/STS14-en-test", "mteb/sts14-sts"),
    "STS15": ("sts/STS15-en-test", "mteb/sts15-sts"),
    "STS16": ("sts/STS16-en-test", "mteb/sts16-sts"),
    "STSBenchmark": ("sts/STSBenchmark", "mteb/stsbenchmark-sts"),
    "SICKRelatedness": ("sts/SICK", "mteb/sickr-sts"),
}


@dataclass(frozen=True)
class StsPairs:
    task: str
    split: str
    s1: list[str]
    s2: list[str]
    gold: np.ndarray
    subset: list[str] | None = (
        None  # STS12-16: the source file (MSRpar, headlines, ...) of each pair
    )


def _ws(text: str) -> str:
    return " ".join(text.split())  # SentEval splits on whitespace and rejoins


def _read_year(folder: Path, task: str) -> StsPairs:
    s1, s2, gold, subset = [], [], [], []
    inputs = sorted(folder.glob("STS*.input.*.txt"))
    if not inputs:
        raise DataError(f"{folder}: no STS*.input.*.txt files for {task}")
    for inp in inputs:
        gs = inp.with_name(inp.name.replace(".input.", ".gs."))
        if not gs.exists():
            raise DataError(f"{inp}: its gold file {gs.name} is missing")
        lines = inp.read_text(encoding="utf-8").splitlines()
        scores = gs.read_text(encoding="utf-8").splitlines()
        if len(lines) != len(scores):
            raise DataError(f"{gs}: {len(scores)} gold lines for {len(lines)} pairs in {inp.name}")
        for lineno, (line, score) in enumerate(zip(lines, scores, strict=True), start=1):
            if not score.strip():
                continue  # an unscored pair (STS16), skipped as SentEval does
            fields = line.split("\t")
            if len(fields) < 2:
                raise DataError(f"{inp}: line {lineno} has no tab-separated sentence pair")
            s1.append(_ws(fields[0]))
            s2.append(_ws(fields[1]))
            gold.append(float(score))
            subset.append(inp.name.split(".input.")[1].removesuffix(".txt"))
    return StsPairs(task, "test", s1, s2, np.asarray(gold), subset)


# Tab-separated pair files: whether the first line is a header, then the columns of
# (gold score, sentence 1, sentence 2).
PAIR_LAYOUTS: dict[str, tuple[bool, tuple[int, int, int]]] = {
    "stsb": (False, (4, 5, 6)),  # genre, file, year, id, score, s1, s2
    "sick": (True, (3, 1, 2)),  # pair_ID, sentence_A, sentence_B, relatedness, entailment
}
SICK_FILES = {"train": "SICK_train.txt", "dev": "SICK_trial.txt", "test": "SICK_test_annotated.txt"}


def read_pair_file(path: Path, layout: str) -> tuple[list[str], list[str], np.ndarray]:
    """Sentence pairs and gold scores of an STS-B or SICK file; bad lines are named."""
    header, (score, a, b) = PAIR_LAYOUTS[layout]
    s1, s2, gold = [], [], []
    lines = path.read_text(encoding="utf-8").splitlines()
    for lineno, line in enumerate(lines[header:], start=1 + header):
        fields = line.split("\t")
        if len(fields) <= max(score, a, b):
            raise DataError(f"{path}: line {lineno} has {len(fields)} fields, expected {layout}")
        try:
            gold.append(float(fields[score]))
        except ValueError:
            raise DataError(
                f"{path}: line {lineno}: score {fields[score]!r} is no number"
            ) from None
        s1.append(_ws(fields[a]))
        s2.append(_ws(fields[b]))
    return s1, s2, np.asarray(gold)


def _read_hub(task: str, hub_id: str, split: str) -> StsPairs:
    import datasets

    data = datasets.load_dataset(hub_id, split="validation" if split == "dev" else split)
    return StsPairs(
        task,
        split,
        [_ws(t) for t in data["sentence1"]],
        [_ws(t) for t in data["sentence2"]],
        np.asarray(data["score"], dtype=float),
    )


def load_sts(task: str, mirrors: Sequence[str | Path] = (), split: str = "test") -> StsPairs:
    """Load one STS task's scored pairs from the first mirror that has it, else from the hub."""
    if task not in STS_TASKS:
        raise KeyError(f"unknown STS task {task!r}; known: {sorted(STS_TASKS)}")
    folder_name, hub_id = STS_TASKS[task]
    try:
        folder = resolve_file(folder_name, mirrors)
    except NotFound as err:
        try:
            return _read_hub(task, hub_id, split)
        except Exception as hub_err:
            raise NotFound(f"{err}\n  hub {hub_id} ({type(hub_err).__name__})") from None
    if task == "STSBenchmark":
        return StsPairs(task, split, *read_pair_file(folder / f"sts-{split}.csv", "stsb"))
    if task == "SICKRelatedness":
        return StsPairs(task, split, *read_pair_file(folder / SICK_FILES[split], "sick"))
    return _read_year(folder, task)


def evaluate_sts(
    model: SentenceTransformer,
    tasks: Sequence[StsPairs],
    batch_size: int = 64,
    progress: bool = True,
) -> pl.DataFrame:
    """Spearman x 100 of cosine similarity per task in both aggregations papers report.

    metric "spearman": SentEval "all" as SimCSE reports it (the subsets of a year pooled into
    one list); metric "spearman_wmean": SentEval's "wmean" (one correlation per subset,
    averaged with subset sizes as weights; a task without subsets has the same value in both).
    Then "Avg" rows: the plain mean over tasks of each metric. All sentences of all tasks are
    deduplicated and encoded once, sorted by length. Returns rows (task, split, metric, value,
    n) matching the ``Scores`` schema, a task's "spearman" row first.
    """
    unique = sorted({s for t in tasks for s in (*t.s1, *t.s2)})
    index = {s: i for i, s in enumerate(unique)}
    emb = encode(model, unique, batch_size=batch_size, progress=progress, desc="evaluate")
    rows = []
    for t in tasks:
        a = emb[[index[s] for s in t.s1]]
        b = emb[[index[s] for s in t.s2]]
        cosine = (a * b).sum(axis=1)  # rows are L2-normalised
        pooled = float(spearmanr(cosine, t.gold).statistic * 100)
        if t.subset is None:
            wmean = pooled
        else:
            labels = np.asarray(t.subset)
            parts = [(labels == name) for name in sorted(set(t.subset))]
            rhos = [spearmanr(cosine[m], t.gold[m]).statistic * 100 for m in parts]
            wmean = float(np.average(rhos, weights=[m.sum() for m in parts]))
        n = len(t.gold)
        rows.append(
            {"task": t.task, "split": t.split, "metric": "spearman", "value": pooled, "n": n}
        )
        rows.append(
            {"task": t.task, "split": t.split, "metric": "spearman_wmean", "value": wmean, "n": n}
        )
    if len(tasks) > 1:
        splits = {t.split for t in tasks}
        split = splits.pop() if len(splits) == 1 else "mixed"  # dev tasks average as dev
        for metric in ("spearman", "spearman_wmean"):
            chosen = [r for r in rows if r["metric"] == metric]
            rows.append(
                {
                    "task": "Avg",
                    "split": split,
                    "metric": metric,
                    "value": float(np.mean([r["value"] for r in chosen])),
                    "n": sum(r["n"] for r in chosen),
                }
            )
    return pl.DataFrame(rows, schema=polars_schema(Scores))
