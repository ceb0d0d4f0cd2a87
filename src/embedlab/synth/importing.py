"""Import a published or gold training set instead of generating one.

Layouts, from CSV, TSV, JSON Lines or Parquet (by the file's extension), local or ``hf://``:

- ``syncse``: columns ``sent0`` (anchor), ``sent1`` (positive), ``hard_neg`` (hard negative),
  the layout of SimCSE's ``nli_for_simcse.csv`` and of SynCSE's released data;
- ``nli``: columns ``premise``, ``entailment``, ``contradiction`` (NLI triplets);
- ``triplet``: columns ``anchor``, ``positive``, ``negative`` (``sentence-transformers/all-nli``);
- ``snli``: one hypothesis a row, ``premise``, ``hypothesis``, ``label`` (0 entailment,
  1 neutral, 2 contradiction; the hub's ``stanfordnlp/snli``, or the mirror's headerless
  ``train/snli/*.txt``), grouped into one (premise, entailment, contradiction) triplet per
  premise; a premise without an entailment or a contradiction becomes a rejected row
  (``no_entailment``, ``no_contradiction``), rows without a gold label (``-1``) are counted;
- ``coco``: COCO caption annotations (JSON, ``annotations``: ``image_id``, ``caption``); the
  first two captions of an image are a positive pair, an image with one caption is rejected
  (``single_caption``); only the train images of ``coco.image_split`` are read, so the images
  that the COCO retrieval task scores are never trained on (the others are counted,
  ``held_out_images``);
- ``auto`` (default) picks the layout by the columns (``coco`` by the JSON's keys).

Several files are read in order as one set. Rows go through the same cheap filters as
generated ones (an empty cell, a copy, ...) and end in pairs or rejected with the reason; ids
hash the texts, so a re-import is identical. With ``anchors`` only rows whose anchor is one of
those texts are imported (a corpus sample shared with a synthesis run, so that gold and
generated sets cover the same anchors); the others are counted as ``not_in_anchors``.

Example::

    pairs, rejected, stats = import_pairs(["train/snli/dev.txt", "train/snli/test.txt"],
                                          layout="snli", mirrors=["../shared/data"])
"""

import json
from collections.abc import Collection, Sequence
from pathlib import Path

import polars as pl

from embedlab.coco import image_split, read_captions
from embedlab.contracts import SYNTH_ACCEPTED, SYNTH_ROWS, rejected_metric
from embedlab.datafiles import SNLI_COLUMNS, TRIPLET, read_table, snli_triplets
from embedlab.errors import SettingError
from embedlab.ids import stable_id
from embedlab.resolve import is_remote, resolve_file
from embedlab.schemas import DataError, Pairs, Rejected, polars_schema
from embedlab.synth.filters import Filters, copy_similarity, reject_reason
from embedlab.text import squash

LAYOUTS = {
    "syncse": ("sent0", "sent1", "hard_neg"),
    "nli": ("premise", "entailment", "contradiction"),
    "triplet": ("anchor", "positive", "negative"),
    "snli": SNLI_COLUMNS,
}


def locate(name: str, mirrors: Sequence[str | Path] = ()) -> str:
    """A local file (as given, or under a mirror) or a remote URL (``hf://...``) as it is."""
    if is_remote(name):
        return name
    return str(resolve_file(name, mirrors))


def _layout(path: str, df: pl.DataFrame, layout: str) -> str:
    if layout == "auto":
        layout = next((k for k, cols in LAYOUTS.items() if set(cols) <= set(df.columns)), "")
        if not layout:
            raise DataError(
                f"{path}: columns {df.columns} match no layout; expected one of "
                + "; ".join(f"{k}: {', '.join(c)}" for k, c in LAYOUTS.items())
            )
    if layout not in LAYOUTS:
        raise SettingError(
            f"unknown import layout {layout!r}; known: auto, coco, {', '.join(LAYOUTS)}"
        )
    missing = [c for c in LAYOUTS[layout] if c not in df.columns]
    if missing:
        raise DataError(f"{path}: layout {layout!r} needs column(s) {missing}; has {df.columns}")
    return layout


def _coco_pairs(path: str) -> tuple[pl.DataFrame, dict[str, float]]:
    """The first two captions (by annotation id) of each image of the train part of
    ``coco.image_split``; a null positive for an image with one caption (rejected as
    ``single_caption``). The dev and test images, which evaluation holds out, are counted."""
    captions = read_captions(path)
    parts = image_split(captions)
    rows = [
        {"anchor": texts[0], "positive": texts[1] if len(texts) > 1 else None, "negative": None}
        for image, texts in captions.items()
        if parts[image] == "train"
    ]
    held_out = len(captions) - len(rows)
    return pl.DataFrame(rows, schema=dict.fromkeys(TRIPLET, pl.String)), {
        "held_out_images": float(held_out)
    }


def _triplets(path: str, layout: str) -> tuple[pl.DataFrame, str, dict[str, float]]:
    """One file as (anchor, positive, negative) rows, its layout and what was counted."""
    if layout == "coco" or (layout == "auto" and Path(path).suffix.lower() == ".json"):
        pairs, counts = _coco_pairs(path)
        return pairs, "coco", counts
    df = read_table(path)
    layout = _layout(path, df, layout)
    if layout == "snli":
        triplets, no_gold = snli_triplets(df, path)
        return triplets, layout, {"hypotheses_without_gold_label": float(no_gold)}
    return (
        df.select(pl.col(c).alias(t) for c, t in zip(LAYOUTS[layout], TRIPLET, strict=True)),
        layout,
        {},
    )


def _reason(anchor, positive, negative, layout: str, filters: Filters) -> str | None:
    if not anchor:
        return "parse"
    if layout == "snli" and positive is None:
        return "no_entailment"
    if layout == "snli" and negative is None:
        return "no_contradiction"
    if layout == "coco" and positive is None:
        return "single_caption"
    return reject_reason(anchor, positive, negative, filters, with_negative=layout != "coco")


def import_pairs(
    paths: str | Path | Sequence[str | Path],
    layout: str = "auto",
    filters: Filters | None = None,
    limit: int | None = None,
    mirrors: Sequence[str | Path] = (),
    anchors: Collection[str] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, float]]:
    """Read one or several files into (pairs, rejected, stats); errors name the file and
    column. ``limit`` keeps the first rows, ``anchors`` the rows whose anchor is among them."""
    names = [str(paths)] if isinstance(paths, str | Path) else [str(p) for p in paths]
    filters = filters or Filters()
    frames, stats, generator, used = [], {}, ",".join(Path(n).name for n in names), set()
    for name in names:
        path = locate(name, mirrors)
        triplets, kind, counts = _triplets(path, layout)
        frames.append(
            triplets.with_columns(file=pl.lit(Path(name).name), row=pl.int_range(pl.len()))
        )
        used.add(kind)
        for k, v in counts.items():
            stats[k] = stats.get(k, 0.0) + v
    df = pl.concat(frames)
    read = df.height
    if anchors is not None:
        wanted = {squash(a) for a in anchors}
        df = df.filter(
            pl.col("anchor").map_elements(lambda a: squash(str(a)) in wanted, pl.Boolean)
        )
        stats["not_in_anchors"] = float(read - df.height)
    if limit:
        df = df.head(limit)
    kind = "/".join(sorted(used))
    accepted, rejected, seen = [], [], set()
    for anchor, positive, negative, file, row in df.iter_rows():
        anchor, positive, negative = (
            squash(str(t)) if t is not None else None for t in (anchor, positive, negative)
        )
        base = {
            "id": stable_id(f"{anchor}\x1f{positive}\x1f{negative}", generator),
            "anchor": anchor or "",
            "positive": positive or None,
            "hard_negative": negative or None,
            "mode": "imported",
            "generator": generator,
            "prompt_id": f"import:{kind}",
        }
        reason = _reason(anchor, positive, negative, kind, filters)
        if reason is None and base["id"] in seen:
            reason = "duplicate"
        seen.add(base["id"])
        if reason:
            raw = json.dumps(
                {
                    "file": file,
                    "row": row,
                    **dict(zip(TRIPLET, (anchor, positive, negative), strict=True)),
                }
            )
            rejected.append(base | {"raw": raw, "reason": reason, "attempt": 1})
        else:
            accepted.append(base | {"copy_similarity": copy_similarity(anchor, positive)})
    pairs = pl.DataFrame(accepted, schema=polars_schema(Pairs))
    rej = pl.DataFrame(rejected, schema=polars_schema(Rejected))
    stats |= {
        SYNTH_ROWS: float(df.height),
        SYNTH_ACCEPTED: float(pairs.height),
        "rejected": float(rej.height),
        "acceptance_rate": pairs.height / max(df.height, 1),
        "acceptance_rate_imported": pairs.height / max(df.height, 1),
    }
    for (reason,), part in rej.group_by("reason"):
        stats[rejected_metric(reason)] = float(part.height)
    return pairs.sort("id"), rej.sort("id"), stats
