"""Stable example ids: a hash of the text and its source, so stages join by id and reruns match."""

import hashlib


def stable_id(text: str, source: str) -> str:
    """Return a 16-hex-digit id that depends only on ``source`` and ``text``.

    >>> stable_id("A cat sat.", "wordnet") == stable_id("A cat sat.", "wordnet")
    True
    """
    digest = hashlib.blake2b(f"{source}\x1f{text}".encode(), digest_size=8)
    return digest.hexdigest()
