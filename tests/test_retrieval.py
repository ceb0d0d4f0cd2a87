import json

import numpy as np
import pytest

from embedlab.evaluate.retrieval import (
    evaluate_retrieval,
    load_retrieval,
    ranking_metrics,
    stsb_retrieval,
)
from embedlab.schemas import DataError


def test_ranking_metrics_by_hand():
    ranked = [["a", "b", "c"], ["x", "y", "z"]]
    qrels = [{"c": 1}, {"x": 2, "z": 1}]
    m = ranking_metrics(ranked, qrels, ks=(1, 3))
    # query 1: relevant at rank 3; query 2: grade 2 at rank 1, grade 1 at rank 3; the gain is
    # the grade itself (trec_eval's ndcg_cut, BEIR, MTEB), not 2^grade - 1
    ndcg1 = 1 / np.log2(4)
    dcg2 = 2 / np.log2(2) + 1 / np.log2(4)
    idcg2 = 2 / np.log2(2) + 1 / np.log2(3)
    assert m["ndcg_at_10"] == pytest.approx((ndcg1 + dcg2 / idcg2) / 2)
    assert m["mrr_at_10"] == pytest.approx((1 / 3 + 1) / 2)
    assert m["recall_at_1"] == pytest.approx((0 + 0.5) / 2)
    assert m["recall_at_3"] == pytest.approx(1.0)


def test_stsb_task_ranks_paraphrases_high_with_the_teacher(mirror, minilm):
    task = stsb_retrieval([mirror])
    assert len(task.queries) > 50 and len(task.corpus) > 2000
    assert all(len(rel) == 1 for rel in task.qrels.values())
    scores = evaluate_retrieval(minilm, task)
    got = dict(zip(scores["metric"], scores["value"], strict=True))
    assert set(got) == {"ndcg_at_10", "mrr_at_10", "recall_at_1", "recall_at_10", "recall_at_100"}
    assert got["recall_at_1"] <= got["recall_at_10"] <= got["recall_at_100"]
    assert got["mrr_at_10"] > 30  # chance is about 1 / len(corpus) ~ 0.04
    # a weaker encoder (MiniLM's token embeddings, averaged) ranks worse
    from embedlab.train import build_student

    static = build_student("static", "sentence-transformers/all-MiniLM-L6-v2")
    weak = evaluate_retrieval(static, task)
    weak_mrr = weak.filter(weak["metric"] == "mrr_at_10")["value"][0]
    assert weak_mrr < got["mrr_at_10"]


def test_beir_layout_is_read_and_bad_rows_are_named(tmp_path):
    (tmp_path / "qrels").mkdir()
    rows = [{"_id": "d1", "text": "cats sleep"}, {"_id": "d2", "title": "Dogs", "text": "bark"}]
    (tmp_path / "corpus.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "do cats nap"}))
    (tmp_path / "qrels/test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    task = load_retrieval(tmp_path, "toy")
    assert task.corpus["d2"] == "Dogs bark" and task.qrels == {"q1": {"d1": 1}}
    (tmp_path / "qrels/test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td9\t1\n")
    with pytest.raises(DataError, match="line 2: document 'd9'"):
        load_retrieval(tmp_path)


def test_ranking_metrics_equal_trec_evals_on_graded_qrels():
    pytrec_eval = pytest.importorskip("pytrec_eval")  # installed with the mteb extra
    rng = np.random.default_rng(0)
    docs = [f"d{i}" for i in range(60)]
    ranked, qrels, run, trec_qrels = [], [], {}, {}
    for q in range(40):
        order = [docs[i] for i in rng.permutation(len(docs))]
        judged = rng.choice(len(docs), size=int(rng.integers(1, 8)), replace=False)
        rel = {docs[i]: int(rng.integers(0, 4)) for i in judged}  # grade 0: judged not relevant
        if q == 0:
            rel = dict.fromkeys(rel, 0)  # no relevant document: every metric 0, as trec_eval
        ranked.append(order)
        qrels.append(rel)
        run[f"q{q}"] = {d: float(len(order) - r) for r, d in enumerate(order)}
        trec_qrels[f"q{q}"] = rel
    measures = {"ndcg_cut_10", "recall_1", "recall_10", "recall_100"}
    per_query = pytrec_eval.RelevanceEvaluator(trec_qrels, measures).evaluate(run)
    got = ranking_metrics(ranked, qrels)
    for ours, theirs in [
        ("ndcg_at_10", "ndcg_cut_10"),
        ("recall_at_1", "recall_1"),
        ("recall_at_10", "recall_10"),
        ("recall_at_100", "recall_100"),
    ]:
        want = np.mean([m[theirs] for m in per_query.values()])
        assert got[ours] == pytest.approx(want), ours


def test_coco_task_asks_for_the_other_captions_of_held_out_images(mirror, minilm):
    from embedlab.coco import CAPTIONS, image_split, read_captions
    from embedlab.evaluate.retrieval import retrieval_task
    from embedlab.train import build_student

    captions = read_captions(mirror / CAPTIONS)
    parts = image_split(captions)
    assert image_split(reversed(list(captions))) == parts  # fixed by the ids, not their order
    counts = {p: sum(v == p for v in parts.values()) for p in ("train", "dev", "test")}
    assert counts == {"train": 3500, "dev": 500, "test": 1000}
    task = retrieval_task("coco", [mirror])
    assert task.name == "COCO-retrieval-test" and len(task.queries) == 1000
    for qid, relevant in task.qrels.items():  # the query: an image's first caption
        image = int(qid[1:])
        assert parts[image] == "test" and task.queries[qid] == captions[image][0]
        assert [task.corpus[d] for d in relevant] == captions[image][1:]  # the others, all
    assert sum(map(len, task.qrels.values())) == len(task.corpus)  # every doc is someone's
    scores = evaluate_retrieval(minilm, task)
    got = dict(zip(scores["metric"], scores["value"], strict=True))
    assert got["ndcg_at_10"] > 40  # chance: about 4 of 4,000 documents
    static = build_student("static", "sentence-transformers/all-MiniLM-L6-v2")
    weak = evaluate_retrieval(static, task)
    assert weak.filter(weak["metric"] == "ndcg_at_10")["value"][0] < got["ndcg_at_10"]


def test_a_caption_file_without_annotations_is_named(tmp_path):
    from embedlab.coco import read_captions

    path = tmp_path / "captions.json"
    path.write_text(json.dumps({"images": []}))
    with pytest.raises(DataError, match="captions.json: no 'annotations' list"):
        read_captions(path)
    path.write_text(json.dumps({"annotations": [{"image_id": 1, "caption": "a"}, {"id": 2}]}))
    with pytest.raises(DataError, match="annotation 1 lacks image_id or caption"):
        read_captions(path)
