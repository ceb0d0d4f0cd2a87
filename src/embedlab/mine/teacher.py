"""Teacher embeddings of the pairs: anchors, positives and hard negatives, stored once.

The matrix (``teacher/<model>.npy``) has one L2-normalised row per (id, field); the ids table
(``teacher/<model>.ids.parquet``: id, field, row) says which. Stages join by id, never by position.

Example::

    emb, ids, hit = embed_pairs(load_encoder("sentence-transformers/all-MiniLM-L6-v2"), pairs)
    view = TeacherView.load("teacher/all-MiniLM-L6-v2.npy", "teacher/...ids.parquet", pairs)
    view.anchor.shape, view.positive.shape
"""

import functools
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from embedlab import schemas
from embedlab.atomic import atomic_write
from embedlab.cache import file_sha256
from embedlab.contracts import NPY_SHA256_KEY

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # the mine stage reads stored embeddings: it need not import the encoder
    from sentence_transformers import SentenceTransformer

FIELDS = ("anchor", "positive", "hard_negative")


def cache_key(identity: str, texts: list[str], batch_size: int, device: str) -> str:
    """A key for the embeddings of ``texts``: everything that decides their bits. The model's
    identity (its weights, ``resolve.model_identity``, not its name), the code of the teacher
    stage (``provenance``), the batch size (padding), the device and torch's version, and the
    texts in order."""
    import torch

    from embedlab.cache import content_key
    from embedlab.provenance import stage_code_version

    digest = hashlib.sha256()
    for text in texts:
        digest.update(b"\x1f" + text.encode())
    code = stage_code_version("teacher")
    return content_key(identity, code, batch_size, device, torch.__version__, digest.hexdigest())


def embed_pairs(
    model: "SentenceTransformer",
    pairs: pl.DataFrame,
    batch_size: int = 64,
    cache_dir: str | Path | None = None,
    identity: str = "",
) -> tuple[np.ndarray, pl.DataFrame, bool]:
    """Embed every field of ``pairs`` in one length-sorted pass.

    Returns (matrix, ids table, cache hit). With ``cache_dir``, the matrix is stored under
    :func:`cache_key` (``identity`` is the model's, from ``resolve.model_identity``) and reused
    by a later run only when the model, the code, the settings and the texts are the same.
    """
    present = [
        (i, f, t)
        for f in FIELDS
        for i, t in zip(pairs["id"], pairs[f], strict=True)
        if t is not None
    ]
    texts = [t for _, _, t in present]  # rows without a positive or hard negative have none
    cached = None
    if cache_dir is not None:
        key = cache_key(identity, texts, batch_size, model.device.type)
        name = Path(identity.split("@", 1)[0]).name
        cached = Path(cache_dir) / f"{name}-{key}.npy"
        checksum = cached.with_name(cached.name + ".sha256")  # written with the entry
    emb, hit = None, False
    if cached is not None and cached.exists():
        try:
            if not checksum.is_file() or checksum.read_text().strip() != file_sha256(cached):
                raise ValueError("its bytes do not match the sha256 written with it")
            emb, hit = np.load(cached), True
            if emb.ndim != 2 or emb.shape[0] != len(texts):
                raise ValueError(f"shape {emb.shape} for {len(texts)} texts")
            if not np.isfinite(emb).all():
                raise ValueError("non-finite values")
        except (ValueError, OSError, EOFError) as err:  # a damaged entry: discarded, recomputed
            emb = None
            log.warning("teacher cache %s is damaged (%s); recomputing it", cached, err)
            cached.unlink()
            checksum.unlink(missing_ok=True)
    if emb is None:
        from embedlab.encode import encode

        emb, hit = encode(model, texts, batch_size, progress=True, desc="teacher"), False
        if cached is not None:  # the entry, then its checksum: a cut between them is a miss
            _save_npy(emb, cached)
            digest = file_sha256(cached)
            atomic_write(checksum, lambda tmp: tmp.write_text(digest))
    ids = pl.DataFrame(
        {
            "id": [i for i, _, _ in present],
            "field": [f for _, f, _ in present],
            "row": np.arange(len(texts), dtype=np.int64),
        }
    )
    return emb, ids, hit


def save(emb: np.ndarray, ids: pl.DataFrame, out: str | Path, ids_out: str | Path) -> None:
    """Write the matrix, then the ids table carrying the matrix's sha256, each atomically."""
    if not np.isfinite(emb).all():
        row = int(np.flatnonzero(~np.isfinite(emb).all(axis=1))[0])
        raise schemas.DataError(f"teacher embedding row {row} is not finite (NaN or inf)")
    _save_npy(emb, out)
    checksum = {NPY_SHA256_KEY: file_sha256(out)}
    schemas.write(ids, ids_out, schemas.TeacherIds, metadata=checksum)


def _save_npy(array: np.ndarray, path: str | Path) -> None:
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
