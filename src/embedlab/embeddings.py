"""The teacher's embedding files, written by the teacher stage and read by mine and sweep.

The matrix (``teacher/<model>.npy``) has one L2-normalised row per (id, field); the ids table
(``teacher/<model>.ids.parquet``: id, field, row) says which, and carries the matrix's sha256 in
its metadata. Stages join by id, never by position.

Example::

    save(emb, ids, "teacher/all-MiniLM-L6-v2.npy", "teacher/all-MiniLM-L6-v2.ids.parquet")
    view = TeacherView.load("teacher/all-MiniLM-L6-v2.npy", "teacher/...ids.parquet", pairs)
    view.anchor.shape, view.positive.shape
"""

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from embedlab import schemas
from embedlab.atomic import atomic_write
from embedlab.cache import file_sha256
from embedlab.contracts import NPY_SHA256_KEY

# the fields of a pairs row that get a teacher embedding, in the matrix's order
FIELDS = ("anchor", "positive", "hard_negative")


def save(emb: np.ndarray, ids: pl.DataFrame, out: str | Path, ids_out: str | Path) -> None:
    """Write the matrix, then the ids table carrying the matrix's sha256, each atomically."""
    if not np.isfinite(emb).all():
        row = int(np.flatnonzero(~np.isfinite(emb).all(axis=1))[0])
        raise schemas.DataError(f"teacher embedding row {row} is not finite (NaN or inf)")
    save_npy(emb, out)
    checksum = {NPY_SHA256_KEY: file_sha256(out)}
    schemas.write(ids, ids_out, schemas.TeacherIds, metadata=checksum)


def save_npy(array: np.ndarray, path: str | Path) -> None:
    """np.save through ``atomic_write``, so a killed stage leaves no half file."""

    def write(tmp: Path) -> None:
        with tmp.open("wb") as f:  # a file object: np.save would add ".npy" to a name
            np.save(f, array)

    atomic_write(path, write)


def _sha256_once(path: Path) -> str:
    """``file_sha256`` of a file, computed once per content (size and modification time) in a
    process: a mine job loads the same matrix for each of its seeds."""
    stat = path.stat()
    return _sha256_of(path.resolve(), stat.st_mtime_ns, stat.st_size)


@functools.cache
def _sha256_of(path: Path, mtime_ns: int, size: int) -> str:
    return file_sha256(path)


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
        expected = pl.read_parquet_metadata(ids_path).get(NPY_SHA256_KEY)
        if expected is not None and _sha256_once(Path(embeddings)) != expected:
            raise schemas.DataError(
                f"{embeddings}: its bytes do not match the sha256 that {ids_path} carries (the "
                "matrix is damaged or from another run); delete both so that the teacher stage "
                "writes them again"
            )
        emb = np.load(embeddings, mmap_mode="r")
        if emb.shape[0] != ids.height:
            raise schemas.DataError(
                f"{embeddings}: {emb.shape[0]} rows but {ids.height} ids in {ids_path}"
            )
        aligned = {}
        anchors = dict(ids.filter(pl.col("field") == "anchor").select("id", "row").iter_rows())
        for field in ("anchor", "positive"):
            rows = dict(ids.filter(pl.col("field") == field).select("id", "row").iter_rows())
            if field == "positive":  # an unlabeled row (no positive) stands for its anchor
                unlabeled = pairs.filter(pl.col("positive").is_null())["id"]
                rows |= {i: anchors[i] for i in unlabeled if i in anchors}
            missing = [i for i in pairs["id"].to_list() if i not in rows]
            if missing:
                raise schemas.DataError(
                    f"{ids_path}: no teacher embedding of the {field} of id {missing[0]!r}"
                )
            idx = [rows[i] for i in pairs["id"].to_list()]
            aligned[field] = np.asarray(emb[idx], dtype=np.float32)
            finite = np.isfinite(aligned[field]).all(axis=1)
            if not finite.all():
                bad = int(np.flatnonzero(~finite)[0])
                raise schemas.DataError(
                    f"{embeddings}: the {field} embedding of id {pairs['id'][bad]!r} (row "
                    f"{idx[bad]}) is not finite (NaN or inf); delete it and {ids_path} so that "
                    "the teacher stage writes them again"
                )
        return cls(**aligned)
