"""Import a published synthetic set instead of generating one.

Two layouts, as CSV, TSV, JSON Lines or Parquet (by the file's extension):

- ``syncse``: columns ``sent0`` (anchor), ``sent1`` (positive), ``hard_neg`` (hard negative),
  the layout of SimCSE's NLI file and of SynCSE's released data;
- ``nli``: columns ``premise``, ``entailment``, ``contradiction`` (NLI triplets);
- ``auto`` (default) picks the one whose columns the file has.

Rows go through the same cheap filters as generated ones (an empty cell, a copy, ...) and end
in pairs or rejected with the reason; ids hash the three texts, so a re-import is identical.

Example::

    pairs, rejected, stats = import_pairs("data/syncse_partial.csv")
"""

import json
from pathlib import Path

import polars as pl

from embedlab.ids import stable_id
from embedlab.schemas import DataError, Pairs, Rejected, polars_schema
from embedlab.synth.filters import Filters, copy_similarity, reject_reason

LAYOUTS = {
    "syncse": ("sent0", "sent1", "hard_neg"),
    "nli": ("premise", "entailment", "contradiction"),
}


def _read(path: Path) -> pl.DataFrame:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pl.read_parquet(path)
    if suffix in (".jsonl", ".json"):
        return pl.read_ndjson(path)
    if suffix in (".csv", ".tsv"):
        sep = "\t" if suffix == ".tsv" else ","
        return pl.read_csv(path, separator=sep, infer_schema=False, quote_char='"')
    raise DataError(f"{path}: unknown file type {suffix!r} (csv, tsv, jsonl or parquet)")


def import_pairs(
    path: str | Path, layout: str = "auto", filters: Filters | None = None, limit: int | None = None
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, float]]:
    """Read a published set into (pairs, rejected, stats); errors name the file and column."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file to import")
    filters = filters or Filters()
    df = _read(path)
    if layout == "auto":
        layout = next((k for k, cols in LAYOUTS.items() if set(cols) <= set(df.columns)), "")
        if not layout:
            raise DataError(
                f"{path}: columns {df.columns} match no layout; expected one of "
                + "; ".join(f"{k}: {', '.join(c)}" for k, c in LAYOUTS.items())
            )
    if layout not in LAYOUTS:
        raise ValueError(f"unknown import layout {layout!r}; known: auto, {', '.join(LAYOUTS)}")
    a, p, n = LAYOUTS[layout]
    missing = [c for c in (a, p, n) if c not in df.columns]
    if missing:
        raise DataError(f"{path}: layout {layout!r} needs column(s) {missing}; has {df.columns}")
    if limit:
        df = df.head(limit)
    accepted, rejected, seen = [], [], set()
    for row_number, (anchor, positive, negative) in enumerate(df.select(a, p, n).iter_rows()):
        anchor, positive, negative = (
            " ".join(str(t).split()) if t is not None else None
            for t in (anchor, positive, negative)
        )
        base = {
            "id": stable_id(f"{anchor}\x1f{positive}\x1f{negative}", path.name),
            "anchor": anchor or "",
            "positive": positive or None,
            "hard_negative": negative or None,
            "mode": "imported",
            "generator": path.name,
            "prompt_id": f"import:{layout}",
        }
        reason = "parse" if not anchor else None
        reason = reason or reject_reason(
            anchor, positive, negative, filters.copy_threshold, filters.min_chars, filters.max_chars
        )
        if reason is None and base["id"] in seen:
            reason = "duplicate"
        seen.add(base["id"])
        if reason:
            raw = json.dumps({"row": row_number, a: anchor, p: positive, n: negative})
            rejected.append(base | {"raw": raw, "reason": reason})
        else:
            accepted.append(base | {"copy_similarity": copy_similarity(anchor, positive)})
    pairs = pl.DataFrame(accepted, schema=polars_schema(Pairs))
    rej = pl.DataFrame(rejected, schema=polars_schema(Rejected))
    stats = {
        "rows": float(df.height),
        "accepted": float(pairs.height),
        "rejected": float(rej.height),
        "acceptance_rate": pairs.height / max(df.height, 1),
        "acceptance_rate_imported": pairs.height / max(df.height, 1),
    }
    for (reason,), part in rej.group_by("reason"):
        stats[f"rejected_{reason}"] = float(part.height)
    return pairs.sort("id"), rej.sort("id"), stats
