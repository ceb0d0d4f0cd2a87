"""Parsing of LLM answers and the cheap quality filters; every failure has a reason code.

Reason codes (also the MLflow metric suffixes ``rejected_<reason>``):

- ``parse``: nothing usable in the answer (empty, or no JSON field / tagged line / text line);
- ``backend_error``: the backend refused the request for good (a 4xx other than 429);
- ``too_short`` / ``too_long``: fewer than ``min_chars`` or more than ``max_chars`` characters;
- ``not_text``: under half of the characters are letters (code, numbers, markup);
- ``positive_copies_anchor`` / ``negative_copies_anchor``: normalised edit similarity to the
  anchor at or above ``copy_threshold``;
- ``positive_equals_negative``: the two answers are the same text;
- ``duplicate``: an answer (or a scratch sentence) already accepted for another row;
- ``teacher_disagrees``: under the teacher the positive is not closer to the anchor than the
  hard negative by ``teacher_margin`` (see ``synth.generate``).
"""

import difflib
import json
import re
from dataclasses import dataclass

from embedlab.settings.synthesize import SynthesizeSettings
from embedlab.text import squash

LABEL = re.compile(
    r"^[\s*#>-]*(paraphrase|contradiction|sentence|answer|output|positive|negative|"
    r"hard[ _]negative|question|claim|keywords?|query)[\s*]*:",
    flags=re.I,
)


def _clean(text: str) -> str:
    return squash(text.strip().strip('"').strip("'"))


def first_sentence(raw: str) -> str | None:
    """The first non-empty line of an answer, without quotes or a leading role label.

    >>> first_sentence('Paraphrase: "A dog runs."\\nMore text.')
    'A dog runs.'
    """
    for line in raw.splitlines():
        cleaned = _clean(LABEL.sub("", line).replace("*", ""))
        if cleaned:
            return cleaned
    return None


def parse_answer(raw: str | None, key: str) -> str | None:
    """The answer for ``key`` (a role) in a raw completion, or None if there is none.

    Tried in order: a JSON object (its ``key`` field, or its only string field; an object with
    neither is a parse failure), a tagged line (``key: ...``, case and ``_``/space ignored),
    then the first text line.

    >>> parse_answer('{"positive": "A cat naps."}', "positive")
    'A cat naps.'
    >>> parse_answer('Sure!\\nHard negative: The cat is awake.', "hard_negative")
    'The cat is awake.'
    >>> parse_answer('A cat naps.', "positive")
    'A cat naps.'
    """
    if raw is None:
        return None
    start, end = raw.find("{"), raw.rfind("}")
    if 0 <= start < end:
        try:
            obj = json.loads(raw[start : end + 1])
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict):
            strings = [v for v in obj.values() if isinstance(v, str)]
            value = obj.get(key) if isinstance(obj.get(key), str) else None
            if value is None and len(strings) == 1:
                value = strings[0]
            return _clean(value) or None if value is not None else None  # JSON without it
    tag = re.compile(rf"^[\s*#>-]*{key.replace('_', '[ _-]?')}[\s*]*:(.*)$", flags=re.I)
    for line in raw.splitlines():
        match = tag.match(line)
        if match and _clean(match[1].replace("*", "")):
            return _clean(match[1].replace("*", ""))
    return first_sentence(raw)


def normalised(text: str) -> str:
    """The form copies and duplicates are judged in: lower case, no punctuation, single spaces."""
    return squash(re.sub(r"[^\w\s]", " ", text.lower()))


def copy_similarity(a: str, b: str) -> float:
    """Normalised edit similarity in [0, 1] (case and punctuation ignored); 1.0 means a copy."""
    return difflib.SequenceMatcher(None, normalised(a), normalised(b), autojunk=False).ratio()


@dataclass(frozen=True)
class Filters:
    """Thresholds of the cheap filters (the teacher filter lives in ``synth.generate``)."""

    copy_threshold: float = SynthesizeSettings.copy_threshold
    min_chars: int = SynthesizeSettings.min_chars
    max_chars: int = SynthesizeSettings.max_chars
    min_letter_ratio: float = 0.5

    @classmethod
    def of(cls, s: SynthesizeSettings) -> "Filters":
        """The thresholds the stage's settings hold."""
        return cls(s.copy_threshold, s.min_chars, s.max_chars)


def text_reason(text: str | None, filters: Filters) -> str | None:
    """Why one generated text is unusable on its own, or None."""
    if text is None or not text.strip():
        return "parse"
    if len(text) < filters.min_chars:
        return "too_short"
    if len(text) > filters.max_chars:
        return "too_long"
    letters = sum(c.isalpha() for c in text)
    if letters < filters.min_letter_ratio * len(text.replace(" ", "")):
        return "not_text"
    return None


def reject_reason(
    anchor: str,
    positive: str | None,
    hard_negative: str | None,
    filters: Filters,
    with_negative: bool = True,
) -> str | None:
    """The reason code for rejecting a generated pair under ``filters``, or None if it is
    accepted. ``with_negative=False`` (query mode) checks the positive only.
    """
    texts = [positive, hard_negative] if with_negative else [positive]
    if any(t is None for t in texts):
        return "parse"
    for text in texts:
        reason = text_reason(text, filters)
        if reason:
            return reason
    if copy_similarity(anchor, positive) >= filters.copy_threshold:
        return "positive_copies_anchor"
    if with_negative and copy_similarity(anchor, hard_negative) >= filters.copy_threshold:
        return "negative_copies_anchor"
    if with_negative and normalised(positive) == normalised(hard_negative):
        return "positive_equals_negative"
    return None
