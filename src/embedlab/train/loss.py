"""InfoNCE with in-batch negatives plus explicit hard negatives (the SimCSE recipe)."""

import torch
import torch.nn.functional as F


def info_nce(
    anchors: torch.Tensor,
    positives: torch.Tensor,
    negatives: torch.Tensor | None = None,
    temperature: float = 0.05,
) -> torch.Tensor:
    """Cross-entropy of each anchor against all positives of the batch and all negatives.

    anchors, positives: [B, d]; negatives: [M, d] (hard negatives of any row, shared by all).
    Row i's target is positive i; every other positive and every negative is a negative.

    >>> a = torch.eye(2)
    >>> bool(info_nce(a, a, temperature=1.0) < info_nce(a, a.flip(0), temperature=1.0))
    True
    """
    candidates = positives if negatives is None else torch.cat([positives, negatives])
    logits = F.normalize(anchors, dim=-1) @ F.normalize(candidates, dim=-1).T / temperature
    labels = torch.arange(anchors.shape[0], device=anchors.device)
    return F.cross_entropy(logits, labels)
