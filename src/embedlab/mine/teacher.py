"""Teacher embeddings of the pairs: anchors, positives and hard negatives, stored once.

The matrix (``teacher/<model>.npy``) has one L2-normalised row per (id, field); the ids table
(``teacher/<model>.ids.parquet``: id, field, row) says which. Stages join by id, never by position.

Example::

    emb, ids = embed_pairs(load_encoder("sentence-transformers/all-MiniLM-L6-v2"), pairs)
    view = TeacherView.load("teacher/all-MiniLM-L6-v2.npy", "teacher/...ids.parquet", pairs)
    view.anchor.shape, view.positive.shape
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from sentence_transformers import SentenceTransformer

from embedlab import schemas
from embedlab.encode import encode

FIELDS = ("anchor", "positive", "hard_negative")


def embed_pairs(
    model: SentenceTransformer, pairs: pl.DataFrame, batch_size: int = 64
) -> tuple[np.ndarray, pl.DataFrame]:
    """Embed every field of ``pairs`` in one length-sorted pass; return (matrix, ids table)."""
    texts = [t for field in FIELDS for t in pairs[field].to_list()]
    emb = encode(model, texts, batch_size, progress=True, desc="teacher")
    ids = pl.DataFrame(
        {
            "id": pairs["id"].to_list() * len(FIELDS),
            "field": [f for f in FIELDS for _ in range(pairs.height)],
            "row": np.arange(len(texts), dtype=np.int64),
        }
    )
    return emb, ids


def save(emb: np.ndarray, ids: pl.DataFrame, out: str | Path, ids_out: str | Path) -> None:
    """Write the ids table and the matrix, each atomically."""
    schemas.write(ids, ids_out, schemas.TeacherIds)
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp.npy")
    np.save(tmp, emb)
    tmp.replace(out)


@dataclass(frozen=True)
class TeacherView:
    """Teacher rows aligned with a pairs table (row i of each matrix is pairs row i)."""

    anchor: np.ndarray
    positive: np.ndarray

    @classmethod
    def load(
        cls, embeddings: str | Path, ids_path: str | Path, pairs: pl.DataFrame
    ) -> "TeacherView":
        ids = schemas.read(ids_path, schemas.TeacherIds)
        emb = np.load(embeddings, mmap_mode="r")
        if emb.shape[0] != ids.height:
            raise schemas.DataError(
                f"{embeddings}: {emb.shape[0]} rows but {ids.height} ids in {ids_path}"
            )
        aligned = {}
        for field in ("anchor", "positive"):
            rows = dict(ids.filter(pl.col("field") == field).select("id", "row").iter_rows())
            missing = [i for i in pairs["id"].to_list() if i not in rows]
            if missing:
                raise schemas.DataError(
                    f"{ids_path}: no teacher embedding of the {field} of id {missing[0]!r}"
                )
            idx = [rows[i] for i in pairs["id"].to_list()]
            aligned[field] = np.asarray(emb[idx], dtype=np.float32)
        return cls(**aligned)
