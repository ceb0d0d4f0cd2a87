"""The STS data sets: STS12-16, STS-B and SICK-R pairs with gold scores, read from a mirror.

Shared by the stages that read them (corpus sources, evaluation, the dev scorer training
selects on) and by the benchmarks. Files are read in SentEval's ``data/downstream/STS``
layout; without a mirror, the public hub copies (``mteb/sts12-sts`` ...) with ``datasets``.

Example::

    dev = load_sts("STSBenchmark", ["../shared/data"], split="dev")
    len(dev.s1), dev.gold[:3]
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embedlab.errors import SettingError
from embedlab.resolve import NotFound, resolve_file
from embedlab.schemas import DataError
from embedlab.tasks import STS
from embedlab.text import squash

# task name -> (mirror folder, hub id); the names are ``tasks.STS``'s (checked below)
STS_TASKS: dict[str, tuple[str, str]] = {
    "STS12": ("sts/STS12-en-test", "mteb/sts12-sts"),
    "STS13": ("sts/STS13-en-test", "mteb/sts13-sts"),
    "STS14": ("sts/STS14-en-test", "mteb/sts14-sts"),
    "STS15": ("sts/STS15-en-test", "mteb/sts15-sts"),
    "STS16": ("sts/STS16-en-test", "mteb/sts16-sts"),
    "STSBenchmark": ("sts/STSBenchmark", "mteb/stsbenchmark-sts"),
    "SICKRelatedness": ("sts/SICK", "mteb/sickr-sts"),
}
if tuple(STS_TASKS) != STS:
    raise ImportError(f"sts_data.STS_TASKS {list(STS_TASKS)} != tasks.STS {list(STS)}")


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
            s1.append(squash(fields[0]))
            s2.append(squash(fields[1]))
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
        s1.append(squash(fields[a]))
        s2.append(squash(fields[b]))
    return s1, s2, np.asarray(gold)


def _read_hub(task: str, hub_id: str, split: str) -> StsPairs:
    import datasets

    data = datasets.load_dataset(hub_id, split="validation" if split == "dev" else split)
    return StsPairs(
        task,
        split,
        [squash(t) for t in data["sentence1"]],
        [squash(t) for t in data["sentence2"]],
        np.asarray(data["score"], dtype=float),
    )


def load_sts(task: str, mirrors: Sequence[str | Path] = (), split: str = "test") -> StsPairs:
    """Load one STS task's scored pairs from the first mirror that has it, else from the hub.
    STS-B and SICK-R have train, dev and test splits; STS12-16 only test (SentEval's)."""
    if task not in STS_TASKS:
        raise SettingError(f"unknown STS task {task!r}; known: {sorted(STS_TASKS)}")
    if split != "test" and task not in ("STSBenchmark", "SICKRelatedness"):
        raise SettingError(f"{task} has only a test split, not {split!r}")
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
