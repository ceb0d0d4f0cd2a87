import numpy as np
import polars as pl
import pytest
from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

from embedlab.errors import SettingError
from embedlab.evaluate import STS_TASKS, evaluate_sts, load_sts


def test_pair_counts_match_the_mirror_readme(mirror):
    # ../shared/data/README.md: scored pairs per task (STS16 skips unscored pairs)
    expected = {
        "STS12": 3108,
        "STS13": 1500,
        "STS14": 3750,
        "STS15": 3000,
        "STS16": 1186,
        "STSBenchmark": 1379,
        "SICKRelatedness": 4927,
    }
    for task in STS_TASKS:
        pairs = load_sts(task, [mirror])
        assert len(pairs.gold) == len(pairs.s1) == len(pairs.s2) == expected[task], task
    assert len(load_sts("STSBenchmark", [mirror], split="dev").gold) == 1500


def test_stsb_matches_sentence_transformers_evaluator(mirror, minilm):
    pairs = load_sts("STSBenchmark", [mirror])
    ours = evaluate_sts(minilm, [pairs]).row(0, named=True)
    reference = EmbeddingSimilarityEvaluator(
        pairs.s1, pairs.s2, pairs.gold.tolist(), main_similarity="cosine", name="stsb"
    )
    theirs = reference(minilm)
    key = next(k for k in theirs if k.endswith("spearman_cosine"))
    assert ours["value"] == pytest.approx(theirs[key] * 100, abs=0.05)
    assert 81.0 < ours["value"] < 83.5  # all-MiniLM-L6-v2's published STS-B test score ~82


def test_avg_is_the_plain_mean(mirror, minilm):
    tasks = [load_sts("STS16", [mirror]), load_sts("SICKRelatedness", [mirror])]
    scores = evaluate_sts(minilm, tasks)
    for metric in ("spearman", "spearman_wmean"):
        chosen = scores.filter(pl.col("metric") == metric)
        values = dict(zip(chosen["task"], chosen["value"], strict=True))
        assert values["Avg"] == pytest.approx(np.mean([values["STS16"], values["SICKRelatedness"]]))
    assert set(scores.filter(pl.col("task") == "Avg")["split"]) == {"test"}
    dev = [
        load_sts("STSBenchmark", [mirror], split="dev"),
        load_sts("SICKRelatedness", [mirror], split="dev"),
    ]
    assert set(evaluate_sts(minilm, dev).filter(pl.col("task") == "Avg")["split"]) == {"dev"}


def test_one_task_has_an_avg_too(mirror, minilm):
    """`evaluate.tasks: [STS16]`: the tables compare methods on Avg, which is the one task's
    score (it used to be missing, and the tables found no seed with both methods)."""
    from embedlab.tables.grouped import paired_seeds

    scores = evaluate_sts(minilm, [load_sts("STS16", [mirror])])
    pooled = scores.filter(pl.col("metric") == "spearman")
    assert pooled["task"].to_list() == ["STS16", "Avg"]
    assert pooled["value"][0] == pooled["value"][1]
    table = pl.DataFrame(
        [
            {"model": f"{m}-bs8-seed{s}", "STS16": v + d + s, "Avg": v + d + s}
            for m, d in (("random", 0.0), ("b3", 0.5))
            for s in range(3)
            for v in [pooled["value"][1]]
        ]
    )
    assert paired_seeds(table, "b3", "random", 8)["diff"] == pytest.approx(0.5)


def test_wmean_is_the_size_weighted_mean_of_per_subset_correlations(mirror, minilm):
    from scipy.stats import spearmanr

    from embedlab.encode import encode

    sts16 = load_sts("STS16", [mirror])
    assert sorted(set(sts16.subset)) == [
        "answer-answer",
        "headlines",
        "plagiarism",
        "postediting",
        "question-question",
    ]
    scores = evaluate_sts(minilm, [sts16], progress=False)
    got = dict(zip(scores["metric"], scores["value"], strict=True))
    a, b = encode(minilm, sts16.s1), encode(minilm, sts16.s2)
    cosine, labels = (a * b).sum(1), np.asarray(sts16.subset)
    rhos, sizes = [], []
    for name in set(sts16.subset):
        m = labels == name
        rhos.append(spearmanr(cosine[m], sts16.gold[m]).statistic * 100)
        sizes.append(m.sum())
    assert got["spearman_wmean"] == pytest.approx(np.average(rhos, weights=sizes), abs=1e-4)
    assert got["spearman"] == pytest.approx(spearmanr(cosine, sts16.gold).statistic * 100, abs=1e-4)
    assert abs(got["spearman"] - got["spearman_wmean"]) > 0.1  # the two really differ
    # a task without subsets reports the same value twice
    stsb = evaluate_sts(minilm, [load_sts("STSBenchmark", [mirror])], progress=False)
    assert stsb["value"][0] == stsb["value"][1]


def test_alignment_and_uniformity_follow_their_definitions(mirror, minilm):
    import torch

    from embedlab.evaluate.geometry import alignment, alignment_uniformity, uniformity

    x = torch.nn.functional.normalize(
        torch.randn(50, 8, generator=torch.Generator().manual_seed(0))
    )
    assert alignment(x, x) == 0.0
    # uniformity by the double loop of its definition
    pairs = [(i, j) for i in range(50) for j in range(i + 1, 50)]
    direct = np.log(np.mean([np.exp(-2 * float((x[i] - x[j]).pow(2).sum())) for i, j in pairs]))
    assert uniformity(x) == pytest.approx(direct, rel=1e-5)
    # a collapsed encoder is perfectly aligned and maximally non-uniform (log 1 = 0)
    assert uniformity(torch.ones(5, 8) / 8**0.5) == pytest.approx(0.0, abs=1e-6)
    dev = load_sts("STSBenchmark", [mirror], split="dev")
    figures = alignment_uniformity(minilm, dev)
    assert 0.0 < figures["alignment"] < 1.0 and -4.0 < figures["uniformity"] < 0.0


def test_unknown_task_is_named():
    with pytest.raises(SettingError, match="STS99"):
        load_sts("STS99")


def test_mteb_adapter_scores_a_mirror_task_as_our_evaluator_does(mirror, minilm):
    """mteb.evaluate drives MtebEncoder over an STS task built from the mirror, offline."""
    from embedlab.evaluate.mteb_adapter import evaluate_mteb

    ours = evaluate_sts(minilm, [load_sts("SICKRelatedness", [mirror])]).row(0, named=True)
    theirs = evaluate_mteb(minilm, ["mirror:SICKRelatedness"], [mirror]).row(0, named=True)
    assert theirs["task"] == "mteb:mirror:SICKRelatedness"
    assert theirs["metric"] == "cosine_spearman"
    assert theirs["value"] == pytest.approx(ours["value"], abs=1e-4)


def test_the_dev_scorer_tokenizes_once_per_model_and_scores_as_evaluate_does(mirror, minilm):
    from embedlab.evaluate import dev_scorer

    dev = load_sts("STSBenchmark", [mirror], split="dev")
    expected = float(evaluate_sts(minilm, [dev], progress=False)["value"][0])
    calls = []
    original = minilm.preprocess
    minilm.preprocess = lambda texts, *a, **k: calls.append(len(texts)) or original(texts, *a, **k)
    try:
        score = dev_scorer([mirror])
        first = score(minilm)
        tokenized = len(calls)
        assert score(minilm) == first == pytest.approx(expected, abs=1e-9)
    finally:
        del minilm.preprocess  # the instance attribute; the class's method again
    assert tokenized > 0 and len(calls) == tokenized  # the second call tokenized nothing
    assert sum(calls) == len({s for s in (*dev.s1, *dev.s2)})
