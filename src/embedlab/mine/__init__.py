"""Mining stage: teacher embeddings and the batch files that fix the training order.

Every miner has the signature ``miner(emb, texts, batch_size, epochs, seed, positives=...,
**options)`` and returns (epochs -> batches -> rows, hard negatives per row, stats).
"""

from embedlab.mine.b3 import b3_batches
from embedlab.mine.hardneg import hardneg_batches
from embedlab.mine.kmeans import kmeans_batches
from embedlab.mine.knn import topk_neighbours
from embedlab.mine.random import random_batches

MINERS = {
    "random": random_batches,
    "b3": b3_batches,
    "kmeans": kmeans_batches,
    "hardneg": hardneg_batches,
}

__all__ = [
    "MINERS",
    "b3_batches",
    "hardneg_batches",
    "kmeans_batches",
    "random_batches",
    "topk_neighbours",
]
