"""Published data files that more than one stage reads: any table by its suffix, and SNLI's
rows grouped into (premise, entailment, contradiction) triplets. The corpus stage takes SNLI's
premises from them, the synthesize stage's import mode the triplets (COCO captions: ``coco``;
the STS sets: ``sts_data``).

Example::

    triplets, no_gold = snli_triplets(read_table("snli/test.txt"), "snli/test.txt")
"""

from pathlib import Path

import polars as pl

from embedlab.schemas import DataError, reading
from embedlab.text import squash

# an (anchor, positive, negative) row of a training set, as the readers return it
TRIPLET = ("anchor", "positive", "negative")
# SNLI's columns (one hypothesis a row) and gold labels (-1: no gold label)
SNLI_COLUMNS = ("premise", "hypothesis", "label")
SNLI_LABELS = {0: "entailment", 1: "neutral", 2: "contradiction"}


def read_table(path: str) -> pl.DataFrame:
    """A file to import by its suffix; a file that cannot be read is named, with its line."""
    with reading(path, "a table"):
        return _read_by_suffix(path)


def _read_by_suffix(path: str) -> pl.DataFrame:
    suffix = Path(path.split("?")[0]).suffix.lower()
    if suffix == ".parquet":
        return pl.read_parquet(path)
    if suffix in (".jsonl", ".json"):
        return pl.read_ndjson(path)
    if suffix in (".csv", ".tsv"):
        sep = "\t" if suffix == ".tsv" else ","
        return pl.read_csv(path, separator=sep, infer_schema=False, quote_char='"')
    if suffix == ".txt":  # the mirror's SNLI copy: premise<TAB>hypothesis<TAB>label, no header
        return pl.read_csv(
            path,
            separator="\t",
            has_header=False,
            new_columns=list(SNLI_COLUMNS),
            infer_schema=False,
            quote_char=None,
        )
    raise DataError(f"{path}: unknown file type {suffix!r} (csv, tsv, txt, jsonl, json, parquet)")


def snli_triplets(df: pl.DataFrame, path: str) -> tuple[pl.DataFrame, int]:
    """Group SNLI rows into (anchor, positive, negative) per premise, in first-seen order.

    Returns the triplets (a null where the premise lacks that hypothesis, to be rejected with
    its reason), and the number of rows without a gold label. A label that is not 0, 1, 2 or -1
    stops with the file and the row.
    """
    by_premise: dict[str, dict[str, str]] = {}
    no_gold = 0
    for row, (premise, hypothesis, label) in enumerate(
        df.select(SNLI_COLUMNS).iter_rows(), start=1
    ):
        try:
            value = int(str(label).strip())
        except ValueError:
            value = None
        if value not in (*SNLI_LABELS, -1):
            raise DataError(f"{path}: row {row}: label {label!r} is not 0, 1, 2 (or -1)")
        if value == -1:
            no_gold += 1
            continue
        if premise is None or hypothesis is None:
            raise DataError(f"{path}: row {row}: an empty premise or hypothesis")
        seen = by_premise.setdefault(squash(premise), {})
        seen.setdefault(SNLI_LABELS[value], squash(hypothesis))
    rows = [
        {"anchor": p, "positive": h.get("entailment"), "negative": h.get("contradiction")}
        for p, h in by_premise.items()
    ]
    return pl.DataFrame(rows, schema=dict.fromkeys(TRIPLET, pl.String)), no_gold
