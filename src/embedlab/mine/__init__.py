"""Mining stage: teacher embeddings and the batch files that fix the training order."""

from embedlab.mine.b3 import b3_batches
from embedlab.mine.knn import topk_neighbours
from embedlab.mine.random import random_batches

MINERS = {"random": random_batches, "b3": b3_batches}

__all__ = ["MINERS", "b3_batches", "random_batches", "topk_neighbours"]
