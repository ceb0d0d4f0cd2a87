"""Loading sentence encoders and encoding text fast: sort by length, batch, normalise.

Used by the teacher (mine stage), the student (train stage) and evaluation, so every stage
embeds text the same way.

Example::

    model = load_encoder("sentence-transformers/all-MiniLM-L6-v2")
    emb = encode(model, ["A cat sits.", "A dog runs."])
    emb.shape
    # (2, 384)
"""

from collections.abc import Sequence

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.util import batch_to_device
from tqdm.auto import tqdm

from embedlab.resolve import resolve_model


def load_encoder(
    name: str, mirrors: Sequence[str] = (), device: str | None = None
) -> SentenceTransformer:
    """Load a sentence-transformers model by path or public id, resolved offline first."""
    found = resolve_model(name, mirrors)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return SentenceTransformer(found.path, device=device)


def encode(
    model: SentenceTransformer,
    texts: Sequence[str],
    batch_size: int = 64,
    normalize: bool = True,
    progress: bool = False,
    desc: str = "encode",
) -> np.ndarray:
    """Embed ``texts`` (float32, one row per text, in input order).

    Texts are sorted by length so each batch pads little; the rows are put back in order.
    """
    if len(texts) == 0:
        return np.zeros((0, model.get_embedding_dimension()), dtype=np.float32)
    order = np.argsort([-len(t) for t in texts], kind="stable")
    out: np.ndarray | None = None
    was_training = model.training
    model.eval()
    steps = range(0, len(texts), batch_size)
    with torch.inference_mode():
        for start in tqdm(steps, desc=desc, unit="batch", disable=not progress):
            idx = order[start : start + batch_size]
            features = batch_to_device(model.preprocess([texts[i] for i in idx]), model.device)
            emb = model(features)["sentence_embedding"].float()
            if normalize:
                emb = torch.nn.functional.normalize(emb, dim=-1)
            if out is None:
                out = np.empty((len(texts), emb.shape[1]), dtype=np.float32)
            out[idx] = emb.cpu().numpy()
    model.train(was_training)
    assert out is not None
    return out
