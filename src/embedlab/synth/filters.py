"""Parsing of LLM answers and quality filters; every failure has a reason code."""

import difflib
import re


def _clean(text: str) -> str:
    return " ".join(text.strip().strip('"').strip("'").split())


def first_sentence(raw: str) -> str | None:
    """The first non-empty line of an answer, without quotes or a leading role label.

    >>> first_sentence('Paraphrase: "A dog runs."\\nMore text.')
    'A dog runs.'
    """
    for line in raw.splitlines():
        line = re.sub(
            r"^[\s*#-]*(paraphrase|contradiction|sentence|answer)[\s*]*:", "", line, flags=re.I
        )
        cleaned = _clean(line.replace("*", ""))
        if cleaned:
            return cleaned
    return None


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def copy_similarity(a: str, b: str) -> float:
    """Normalised edit similarity in [0, 1] (case and punctuation ignored); 1.0 means a copy."""
    return difflib.SequenceMatcher(None, _norm(a), _norm(b), autojunk=False).ratio()


def reject_reason(
    anchor: str,
    positive: str | None,
    hard_negative: str | None,
    copy_threshold: float,
    min_chars: int = 3,
) -> str | None:
    """The reason code for rejecting a generated pair, or None if it is accepted."""
    if positive is None or hard_negative is None:
        return "parse"
    if min(len(positive), len(hard_negative)) < min_chars:
        return "too_short"
    if copy_similarity(anchor, positive) >= copy_threshold:
        return "positive_copies_anchor"
    if copy_similarity(anchor, hard_negative) >= copy_threshold:
        return "negative_copies_anchor"
    if _norm(positive) == _norm(hard_negative):
        return "positive_equals_negative"
    return None
