import numpy as np
import pytest

from embedlab.evaluate.pairs import PAIR_TASKS, average_precision, evaluate_pairs, sick_entailment
from embedlab.schemas import DataError


def test_average_precision_by_hand():
    # ranked by score: pos, neg, pos, neg -> precision at the positives 1/1 and 2/3
    scores = np.array([0.9, 0.7, 0.5, 0.1])
    labels = np.array([1, 0, 1, 0])
    assert average_precision(scores, labels) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision(-scores, labels) == pytest.approx((1 / 2 + 2 / 4) / 2)


def test_sick_entailment_labels_the_entailed_pairs(mirror, minilm):
    task = PAIR_TASKS["sick"]([mirror])
    assert task.name == "SICK-E-test" and len(task.s1) == len(task.s2) == task.labels.size == 4927
    assert task.labels.sum() == 1414  # SICK test: 1,414 ENTAILMENT of 4,927 pairs
    scores = evaluate_pairs(minilm, task)
    (ap,) = scores.filter(scores["metric"] == "ap")["value"].to_list()
    assert 100 * task.labels.mean() < ap <= 100  # better than the base rate (chance's AP)
    from embedlab.train import build_student

    static = build_student("static", "sentence-transformers/all-MiniLM-L6-v2")
    weak = evaluate_pairs(static, task)["value"][0]
    assert weak < ap


def test_a_bad_judgment_is_named_with_its_line(tmp_path):
    folder = tmp_path / "sts/SICK"
    folder.mkdir(parents=True)
    header = "pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\n"
    (folder / "SICK_test_annotated.txt").write_text(
        header + "1\ta dog runs\ta dog is running\t4.5\tENTAILMENT\n2\ta\tb\t1\tMAYBE\n"
    )
    with pytest.raises(DataError, match=r"SICK_test_annotated.txt: line 3: .*'MAYBE'"):
        sick_entailment([tmp_path])
