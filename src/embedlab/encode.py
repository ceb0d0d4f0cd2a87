"""Loading sentence encoders and encoding text fast: sort by length, batch, normalise.

Used by the teacher (mine stage), the student (train stage) and evaluation, so every stage
embeds text the same way.

Example::

    model = load_encoder("sentence-transformers/all-MiniLM-L6-v2")
    emb = encode(model, ["A cat sits.", "A dog runs."])
    emb.shape
    # (2, 384)
"""

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.util import batch_to_device
from tqdm.auto import tqdm

from embedlab.resolve import resolve_model


def default_device() -> str:
    """Where a model runs when no device is named: the first GPU if torch sees one (training
    leaves this to accelerate)."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_encoder(
    name: str, mirrors: Sequence[str] = (), device: str | None = None
) -> SentenceTransformer:
    """Load a sentence-transformers model by path or public id, resolved offline first."""
    found = resolve_model(name, mirrors)
    return SentenceTransformer(found.path, device=device or default_device())


TOKENS_PER_SENTENCE = 32  # batch_size counts sentences of this many tokens


def _token_lengths(model: SentenceTransformer, texts: Sequence[str]) -> np.ndarray:
    """Tokens per text under the model's tokenizer (characters where it has no HF tokenizer)."""
    tokenizer = getattr(model, "tokenizer", None)
    if callable(tokenizer) and hasattr(tokenizer, "pad"):
        max_length = model.max_seq_length or None
        ids = tokenizer(list(texts), truncation=max_length is not None, max_length=max_length)
        return np.fromiter((len(x) for x in ids["input_ids"]), dtype=np.int64, count=len(texts))
    return np.fromiter((len(t) // 4 + 2 for t in texts), dtype=np.int64, count=len(texts))


def _batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Indices in descending token length, cut so each batch pads to about the same number
    of tokens (``batch_size`` x 32): many short sentences per batch, few long ones."""
    order = np.argsort(-lengths, kind="stable")
    budget = batch_size * TOKENS_PER_SENTENCE
    out, start = [], 0
    while start < len(order):
        rows = max(1, budget // max(int(lengths[order[start]]), 1))  # the longest sets the pad
        out.append(order[start : start + rows])
        start += rows
    return out


Tokenized = list[tuple[np.ndarray, dict]]  # (row indices, the model's input features)


def tokenize(model: SentenceTransformer, texts: Sequence[str], batch_size: int = 64) -> Tokenized:
    """``texts`` cut into ``encode``'s batches and run through the model's tokenizer, once.

    Keep it to embed the same texts many times with one tokenizer: the dev set that training
    scores every few steps would otherwise be tokenized anew each time, which costs more than
    the forward pass of a static student.
    """
    return list(_tokenized(model, texts, _batches(_token_lengths(model, texts), batch_size)))


def _tokenized(
    model: SentenceTransformer, texts: Sequence[str], rows: list[np.ndarray]
) -> Iterator[tuple[np.ndarray, dict]]:
    for idx in rows:
        yield idx, model.preprocess([texts[i] for i in idx])


def encode(
    model: SentenceTransformer,
    texts: Sequence[str],
    batch_size: int = 64,
    normalize: bool = True,
    progress: bool = False,
    desc: str = "encode",
    tokenized: Tokenized | None = None,
) -> np.ndarray:
    """Embed ``texts`` (float32, one row per text, in input order).

    Texts are sorted by token length and cut into batches of about ``batch_size`` x 32 tokens
    (padded), so a batch pads little and short sentences share big batches (on a CPU, small
    matrix products waste most of their time); the rows are put back in order. ``tokenized``
    (from ``tokenize`` on the same texts) skips the tokenizer.
    """
    if len(texts) == 0:
        return np.zeros((0, model.get_embedding_dimension()), dtype=np.float32)
    if tokenized is None:  # tokenize batch by batch: a corpus need not fit in memory twice
        rows = _batches(_token_lengths(model, texts), batch_size)
        batches, total = _tokenized(model, texts, rows), len(rows)
    else:
        batches, total = iter(tokenized), len(tokenized)
    out: np.ndarray | None = None
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for idx, features in tqdm(
            batches, desc=desc, unit="batch", total=total, disable=not progress
        ):
            emb = model(batch_to_device(features, model.device))["sentence_embedding"].float()
            if normalize:
                emb = torch.nn.functional.normalize(emb, dim=-1)
            if out is None:
                out = np.empty((len(texts), emb.shape[1]), dtype=np.float32)
            out[idx] = emb.cpu().numpy()
    model.train(was_training)
    assert out is not None
    return out
