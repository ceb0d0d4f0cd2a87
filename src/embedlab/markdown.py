"""One Markdown table writer for every page embedlab writes (tables, study pages, samples).

>>> print(table(["model", "Avg"], [["b3", "71.20"], ["a|b", None]], align="lr"), end="")
| model | Avg |
|---|---:|
| b3 | 71.20 |
| a\\|b |  |
"""

from collections.abc import Iterable, Sequence


def _cell(value: object) -> str:
    return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")


def table(header: Sequence[str], rows: Iterable[Sequence[object]], align: str = "") -> str:
    """``header`` and ``rows`` as a Markdown table; ``align`` has one letter per column, ``l``
    or ``r`` (default: the first column left, the others right). Cells are escaped."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"
    lines = ["| " + " | ".join(header) + " |", rule]
    lines += ["| " + " | ".join(map(_cell, row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"
