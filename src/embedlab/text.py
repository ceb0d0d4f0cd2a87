"""The one whitespace normalisation every reader applies: runs of whitespace (tabs, newlines,
non-breaking spaces) collapsed to one space, none at the ends, as SentEval's readers split and
rejoin. Texts are compared, deduplicated and matched across files in this form.

Example::

    squash("  two dogs\\t run \\n")   # 'two dogs run'
"""


def squash(text: str) -> str:
    """``text`` with every run of whitespace one space and no space at either end.

    >>> squash(" a \\t b\\n")
    'a b'
    """
    return " ".join(text.split())
