from embedlab.synth.filters import Filters, copy_similarity, first_sentence, reject_reason


def test_first_sentence_strips_labels_quotes_and_markup():
    assert first_sentence('**Paraphrase:** "A dog is running."\nNote: more') == "A dog is running."
    assert first_sentence("\n\n  Contradiction: A dog sleeps.") == "A dog sleeps."
    assert first_sentence("   \n") is None


def test_copy_similarity_ignores_case_and_punctuation():
    assert copy_similarity("The cat sat.", "the cat sat") == 1.0
    assert copy_similarity("The cat sat.", "A dog ran far away") < 0.5


def test_reject_reasons():
    anchor = "The committee approved the budget."
    f, short = Filters(copy_threshold=0.9), Filters(copy_threshold=0.9, min_chars=2)
    assert reject_reason(anchor, None, "x y z", f) == "parse"
    assert reject_reason(anchor, "ok", "The budget was rejected.", f) == "too_short"
    assert reject_reason(anchor, "the committee approved the budget", "No.", short) == (
        "positive_copies_anchor"
    )
    assert reject_reason(anchor, "The budget got approved.", anchor, f) == "negative_copies_anchor"
    same = "The budget passed."
    assert reject_reason(anchor, same, same + "!", f) == "positive_equals_negative"
    assert (
        reject_reason(anchor, "The budget was accepted.", "The budget was voted down.", f) is None
    )


def test_parse_answer_reads_json_tagged_lines_and_plain_text():
    from embedlab.synth.filters import parse_answer

    assert parse_answer('Sure: {"hard_negative": "The cat is awake."}', "hard_negative") == (
        "The cat is awake."
    )
    assert parse_answer('{"text": "Only one field."}', "positive") == "Only one field."
    assert parse_answer('{"a": "x", "b": "y"}', "positive") is None  # JSON without the field
    assert parse_answer("Okay.\n**Question:** Where is it?", "question") == "Where is it?"
    assert parse_answer("", "positive") is None
    assert parse_answer(None, "positive") is None


def test_text_reasons_and_query_mode():
    from embedlab.synth.filters import text_reason

    f = Filters(max_chars=20)
    assert text_reason("12345 678 90 !!", f) == "not_text"
    assert text_reason("x" * 21, f) == "too_long"
    assert text_reason("   ", f) == "parse"
    assert text_reason("A fine sentence.", f) is None
    passage = "The Eiffel Tower was completed in 1889."
    assert (
        reject_reason(passage, "When was it built?", None, Filters(), with_negative=False) is None
    )
    assert reject_reason(passage, passage, None, Filters(), with_negative=False) == (
        "positive_copies_anchor"
    )
