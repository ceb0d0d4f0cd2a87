import polars as pl
import pytest

from embedlab import schemas
from embedlab.ids import stable_id
from embedlab.synth.generate import PromptTemplate, load_llm, synthesize

from .conftest import REPO

PROMPT = REPO / "config/prompts/partial.yaml"


def test_prompt_template_builds_few_shot_turns():
    template = PromptTemplate.load(PROMPT)
    turns = template.messages("hard_negative", "The sky is blue.")
    assert turns[0]["role"] == "system"
    assert [t["role"] for t in turns[1:]] == ["user", "assistant"] * 2 + ["user"]
    assert turns[-1]["content"].endswith("Sentence: The sky is blue.")
    assert "Contradict" in turns[-1]["content"]


def test_prompt_template_errors_name_the_file_and_key(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("id: x\nsystem: s\nroles:\n  positive: {instruction: 'no placeholder'}\n")
    with pytest.raises(ValueError, match=r"p\.yaml: roles lack \['hard_negative'\]"):
        PromptTemplate.load(path)
    path.write_text(
        "id: x\nsystem: s\nroles:\n  positive: {instruction: 'no placeholder'}\n"
        "  hard_negative: {instruction: '{anchor}'}\n"
    )
    with pytest.raises(ValueError, match="roles.positive.instruction has no"):
        PromptTemplate.load(path)


@pytest.fixture(scope="module")
def llm():
    return load_llm("HuggingFaceTB/SmolLM2-135M-Instruct", device="cpu")


@pytest.mark.slow
def test_real_llm_accounts_for_every_anchor_and_is_deterministic(llm):
    texts = [
        "The children played in the garden.",
        "She poured the milk into a glass.",
        "He sold his old car last week.",
        "The committee approved the new budget.",
        "A man is playing a guitar on the street.",
    ]
    corpus = pl.DataFrame(
        {"id": [stable_id(t, "t") for t in texts], "text": texts, "source": ["t"] * len(texts)}
    )
    template = PromptTemplate.load(PROMPT)
    first = synthesize(corpus, llm, template, n_anchors=5, batch_size=3, max_new_tokens=24)
    second = synthesize(corpus, llm, template, n_anchors=5, batch_size=3, max_new_tokens=24)
    pairs, rejected, stats = first
    schemas.validate(pairs, schemas.Pairs, "pairs")
    schemas.validate(rejected, schemas.Rejected, "rejected")
    assert sorted([*pairs["id"], *rejected["id"]]) == sorted(corpus["id"])
    assert pairs.equals(second[0]) and rejected.equals(second[1])
    assert stats["anchors"] == 5 and stats["tokens_per_s"] > 0
    for row in pairs.iter_rows(named=True):
        assert row["positive"] != row["anchor"] and row["hard_negative"] != row["positive"]
