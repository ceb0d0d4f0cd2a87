"""Retrieval evaluation: queries against a corpus with graded relevance, nDCG@10, MRR@10, Recall@k.

A task is three things: queries {id: text}, a corpus {id: text} and relevance
{query id: {doc id: grade}}. ``load_retrieval`` reads them from local files in the BEIR layout
(``queries.jsonl``, ``corpus.jsonl``, ``qrels/test.tsv``). Two tasks are built from the mirror,
offline:

- ``stsb``: each STS-B pair with gold score 5 gives a query (its first sentence) whose one
  relevant document is its second sentence, among every sentence of the split;
- ``coco``: caption-to-caption retrieval over the test images of ``coco.image_split`` (never
  trained on): each image's first caption is a query, its other captions (about 4) are the
  relevant documents, among the other captions of every test image. Captions of similar
  scenes are near-duplicates, so the task punishes an encoder that cannot tell them apart.

Example::

    task = RETRIEVAL_TASKS["coco"](["../shared/data"])
    scores = evaluate_retrieval(model, task)   # rows of the Scores schema
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch
from sentence_transformers import SentenceTransformer

from embedlab.encode import encode
from embedlab.schemas import DataError, Scores, polars_schema
from embedlab.sts_data import load_sts
from embedlab.tasks import COCO_RETRIEVAL, STSB_RETRIEVAL, task_name


@dataclass(frozen=True)
class RetrievalTask:
    name: str
    queries: dict[str, str]
    corpus: dict[str, str]
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: grade}; grade 0: judged irrelevant


def stsb_retrieval(mirrors: Sequence[str | Path] = (), split: str = "test") -> RetrievalTask:
    """STS-B pairs scored 5.0 as (query, relevant document), among all sentences of the split."""
    pairs = load_sts("STSBenchmark", mirrors, split=split)
    sentences = sorted({*pairs.s1, *pairs.s2})
    doc_id = {s: f"d{i}" for i, s in enumerate(sentences)}
    queries, qrels = {}, {}
    for i in np.flatnonzero(pairs.gold >= 5.0):
        if pairs.s1[i] == pairs.s2[i]:
            continue  # a query may not retrieve itself
        qid = f"q{i}"
        queries[qid] = pairs.s1[i]
        qrels[qid] = {doc_id[pairs.s2[i]]: 1}
    corpus = {d: s for s, d in doc_id.items()}
    return RetrievalTask(task_name(STSB_RETRIEVAL, split), queries, corpus, qrels)


def coco_retrieval(mirrors: Sequence[str | Path] = (), split: str = "test") -> RetrievalTask:
    """Caption-to-caption retrieval over the images of one part of ``coco.image_split``: the
    first caption of each image asks for the image's other captions."""
    from embedlab.coco import CAPTIONS, image_split, read_captions
    from embedlab.resolve import resolve_file

    captions = read_captions(resolve_file(CAPTIONS, mirrors))
    parts = image_split(captions)
    queries, corpus, qrels = {}, {}, {}
    for image, texts in captions.items():
        if parts[image] != split or len(texts) < 2:
            continue  # an image with one caption has nothing to retrieve
        queries[f"q{image}"] = texts[0]
        docs = {f"d{image}-{k}": t for k, t in enumerate(texts[1:], start=1)}
        corpus |= docs
        qrels[f"q{image}"] = dict.fromkeys(docs, 1)
    return RetrievalTask(task_name(COCO_RETRIEVAL, split), queries, corpus, qrels)


# the tasks ``evaluate.retrieval`` builds from the mirror by name; any other name is a folder
RETRIEVAL_TASKS = {"stsb": stsb_retrieval, "coco": coco_retrieval}


def retrieval_task(name: str, mirrors: Sequence[str | Path] = ()) -> RetrievalTask:
    """A task by its ``evaluate.retrieval`` name: one of ``RETRIEVAL_TASKS``, else a folder in
    the BEIR layout."""
    build = RETRIEVAL_TASKS.get(name)
    return build(mirrors) if build else load_retrieval(name)


def _jsonl(path: Path) -> dict[str, str]:
    out = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            out[str(row["_id"])] = (row.get("title", "") + " " + row["text"]).strip()
        except (json.JSONDecodeError, KeyError) as err:
            raise DataError(f"{path}: line {lineno}: {type(err).__name__} {err}") from None
    return out


def load_retrieval(folder: str | Path, name: str | None = None) -> RetrievalTask:
    """A task in the BEIR layout: queries.jsonl, corpus.jsonl (``_id``, ``text``, optional
    ``title``) and qrels/test.tsv (``query-id``, ``corpus-id``, ``score`` with a header)."""
    folder = Path(folder)
    queries, corpus = _jsonl(folder / "queries.jsonl"), _jsonl(folder / "corpus.jsonl")
    qrels: dict[str, dict[str, int]] = {}
    path = folder / "qrels" / "test.tsv"
    for lineno, line in enumerate(path.read_text().splitlines()[1:], start=2):
        fields = line.split("\t")
        if len(fields) != 3:
            raise DataError(f"{path}: line {lineno} has {len(fields)} fields, expected 3")
        qid, did, grade = fields
        if did not in corpus:
            raise DataError(f"{path}: line {lineno}: document {did!r} is not in corpus.jsonl")
        if int(grade) > 0:
            qrels.setdefault(qid, {})[did] = int(grade)
    missing = sorted(set(qrels) - set(queries))
    if missing:
        raise DataError(f"{path}: query {missing[0]!r} is not in queries.jsonl")
    return RetrievalTask(name or folder.name, {q: queries[q] for q in qrels}, corpus, qrels)


def ranking_metrics(
    ranked: Sequence[Sequence[str]],
    qrels: Sequence[dict[str, int]],
    ks: Sequence[int] = (1, 10, 100),
) -> dict[str, float]:
    """nDCG@10, MRR@10 and Recall@k averaged over queries, from each query's ranked doc ids.

    nDCG uses the linear gain (the grade itself), as trec_eval's ``ndcg_cut``, BEIR and MTEB do.

    >>> m = ranking_metrics([["a", "b"]], [{"b": 1}], ks=(1, 2))
    >>> round(m["ndcg_at_10"], 4), m["mrr_at_10"], m["recall_at_1"], m["recall_at_2"]
    (0.6309, 0.5, 0.0, 1.0)
    >>> round(ranking_metrics([["a", "c", "b"]], [{"a": 1, "b": 2}])["ndcg_at_10"], 4)
    0.7602
    """
    ndcg, mrr, recall = [], [], {k: [] for k in ks}
    for docs, rel in zip(ranked, qrels, strict=True):
        gains = np.array([rel.get(d, 0) for d in docs[:10]], dtype=float)
        dcg = (gains / np.log2(np.arange(2, gains.size + 2))).sum()
        ideal = np.sort(np.array(list(rel.values()), dtype=float))[::-1][:10]
        idcg = (ideal / np.log2(np.arange(2, ideal.size + 2))).sum()
        ndcg.append(dcg / idcg if idcg > 0 else 0.0)
        first = next((i for i, d in enumerate(docs[:10]) if rel.get(d, 0) > 0), None)
        mrr.append(0.0 if first is None else 1.0 / (first + 1))
        relevant = sum(grade > 0 for grade in rel.values())  # a grade-0 judgment is not relevant
        for k in ks:
            hits = len({d for d in docs[:k] if rel.get(d, 0) > 0})
            recall[k].append(hits / relevant if relevant else 0.0)  # trec_eval's 0 as for nDCG
    out = {"ndcg_at_10": float(np.mean(ndcg)), "mrr_at_10": float(np.mean(mrr))}
    return out | {f"recall_at_{k}": float(np.mean(v)) for k, v in recall.items()}


def evaluate_retrieval(
    model: SentenceTransformer, task: RetrievalTask, batch_size: int = 64, top_k: int = 100
) -> pl.DataFrame:
    """Rank the whole corpus for every query by cosine similarity; metrics x 100 as Scores rows."""
    qids, dids = list(task.qrels), list(task.corpus)
    q = torch.from_numpy(encode(model, [task.queries[i] for i in qids], batch_size))
    d = torch.from_numpy(encode(model, [task.corpus[i] for i in dids], batch_size))
    ranked = []
    for start in range(0, len(qids), 1024):  # blocks of queries: no [Q, N] matrix at once
        top = (q[start : start + 1024] @ d.T).topk(min(top_k, len(dids)), dim=1).indices
        ranked += [[dids[j] for j in row] for row in top.tolist()]
    metrics = ranking_metrics(ranked, [task.qrels[i] for i in qids])
    rows = [
        {"task": task.name, "split": "test", "metric": k, "value": v * 100, "n": len(qids)}
        for k, v in metrics.items()
    ]
    return pl.DataFrame(rows, schema=polars_schema(Scores))
