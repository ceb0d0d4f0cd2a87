import numpy as np
import pytest
from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

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
    values = dict(zip(scores["task"], scores["value"], strict=True))
    assert values["Avg"] == pytest.approx(np.mean([values["STS16"], values["SICKRelatedness"]]))


def test_unknown_task_is_named():
    with pytest.raises(KeyError, match="STS99"):
        load_sts("STS99")
