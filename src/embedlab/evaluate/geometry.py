"""Alignment and uniformity (Wang & Isola, 2020) of an encoder, computed as SimCSE does.

alignment = E ||f(x) - f(x+)||^2 over positive pairs (STS-B pairs with gold score above 4);
uniformity = log E exp(-2 ||f(x) - f(y)||^2) over all pairs of distinct sentences of the set.
Embeddings are L2-normalised. Lower is better for both.

Example::

    dev = load_sts("STSBenchmark", mirrors=["../shared/data"], split="dev")
    alignment_uniformity(model, dev)
    # {'alignment': 0.2..., 'uniformity': -3.1...}
"""

import numpy as np
import polars as pl
import torch
from sentence_transformers import SentenceTransformer

from embedlab.contracts import ALIGNMENT, UNIFORMITY
from embedlab.encode import encode
from embedlab.schemas import DataError, Scores, polars_schema
from embedlab.sts_data import StsPairs


def alignment(x: torch.Tensor, y: torch.Tensor, alpha: float = 2.0) -> float:
    """Mean of ||x_i - y_i||^alpha over paired rows.

    >>> alignment(torch.eye(2), torch.eye(2))
    0.0
    """
    return float((x - y).norm(dim=1).pow(alpha).mean())


def uniformity(x: torch.Tensor, t: float = 2.0) -> float:
    """log of the mean Gaussian potential exp(-t ||x_i - x_j||^2) over pairs i < j."""
    return float(torch.pdist(x, p=2).pow(2).mul(-t).exp().mean().log())


def alignment_uniformity(
    model: SentenceTransformer, pairs: StsPairs, threshold: float = 4.0, batch_size: int = 64
) -> dict[str, float]:
    """Alignment over the pairs scored above ``threshold``, uniformity over all sentences."""
    sentences = sorted({*pairs.s1, *pairs.s2})
    index = {s: i for i, s in enumerate(sentences)}
    emb = torch.from_numpy(encode(model, sentences, batch_size=batch_size))
    positive = np.flatnonzero(pairs.gold > threshold)
    if positive.size == 0:
        raise DataError(f"{pairs.task} {pairs.split}: no pair scores above {threshold}")
    a = emb[[index[pairs.s1[i]] for i in positive]]
    b = emb[[index[pairs.s2[i]] for i in positive]]
    return {ALIGNMENT: alignment(a, b), UNIFORMITY: uniformity(emb)}


def geometry_scores(
    model: SentenceTransformer, pairs: StsPairs, batch_size: int = 64
) -> pl.DataFrame:
    """``alignment_uniformity`` as rows of the Scores schema (metric alignment / uniformity)."""
    figures = alignment_uniformity(model, pairs, batch_size=batch_size)
    rows = [
        {"task": pairs.task, "split": pairs.split, "metric": k, "value": v, "n": len(pairs.gold)}
        for k, v in figures.items()
    ]
    return pl.DataFrame(rows, schema=polars_schema(Scores))
