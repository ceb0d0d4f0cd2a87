"""The teacher stage's work: embed every text of the pairs (anchors, positives, hard negatives)
once, in one length-sorted pass, with a cache keyed by everything that decides the bits.
``embedlab.embeddings`` writes and reads the result.

Example::

    emb, ids, hit = embed_pairs(load_encoder("sentence-transformers/all-MiniLM-L6-v2"), pairs)
    save(emb, ids, "teacher/all-MiniLM-L6-v2.npy", "teacher/all-MiniLM-L6-v2.ids.parquet")
"""

import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from embedlab.atomic import write_text
from embedlab.cache import file_sha256
from embedlab.embeddings import FIELDS, save_npy

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # the encoder is the caller's
    from sentence_transformers import SentenceTransformer


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
            save_npy(emb, cached)
            digest = file_sha256(cached)
            write_text(checksum, digest)
    ids = pl.DataFrame(
        {
            "id": [i for i, _, _ in present],
            "field": [f for _, f, _ in present],
            "row": np.arange(len(texts), dtype=np.int64),
        }
    )
    return emb, ids, hit
