"""InfoNCE with in-batch negatives plus explicit hard negatives (the SimCSE recipe)."""

import torch
import torch.nn.functional as F


def info_nce(
    anchors: torch.Tensor,
    positives: torch.Tensor,
    negatives: torch.Tensor | None = None,
    temperature: float = 0.05,
    symmetric: bool = False,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy of each anchor against all positives of the batch and all negatives.

    anchors, positives: [B, d]; negatives: [M, d] (hard negatives of any row, shared by all).
    Row i's target is positive i; every other positive and every negative is a negative.
    ``symmetric`` adds the positive-to-anchor direction (positives against all anchors), as in
    CLIP; ``weights`` [B] weighs each row's term (e.g. a synthesis quality score) and the loss
    is their weighted mean. Scores are computed in float32 whatever the input dtype.

    >>> a = torch.eye(2)
    >>> bool(info_nce(a, a, temperature=1.0) < info_nce(a, a.flip(0), temperature=1.0))
    True
    """
    anchors, positives = (
        F.normalize(anchors.float(), dim=-1),
        F.normalize(positives.float(), dim=-1),
    )
    candidates = positives
    if negatives is not None and negatives.shape[0]:
        candidates = torch.cat([positives, F.normalize(negatives.float(), dim=-1)])
    labels = torch.arange(anchors.shape[0], device=anchors.device)
    per_row = F.cross_entropy(anchors @ candidates.T / temperature, labels, reduction="none")
    if symmetric:
        back = F.cross_entropy(positives @ anchors.T / temperature, labels, reduction="none")
        per_row = (per_row + back) / 2
    if weights is None:
        return per_row.mean()
    weights = weights.to(per_row)
    return (per_row * weights).sum() / weights.sum().clamp_min(1e-12)
