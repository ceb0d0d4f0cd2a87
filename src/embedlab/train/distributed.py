"""Data parallelism over one mined batch: each rank embeds a contiguous shard of it, and
embeddings are all-gathered so that every rank computes the loss over the whole mined batch.

Gradients flow only into a rank's own shard of the gathered tensor; since every rank computes the
same global loss, each rank's parameter gradient is its shard's share of the global gradient,
and summing them over ranks (``all_reduce_grads``) gives exactly the single-process gradient.
Works with any backend (gloo on CPU, NCCL on GPU) since it needs only all_gather and all_reduce.
"""

from collections.abc import Iterable

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside torch.distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard(n: int, rank: int, size: int) -> slice:
    """The contiguous part of ``n`` items that ``rank`` of ``size`` takes (sizes differ by <= 1).

    >>> [shard(5, r, 2) for r in range(2)]
    [slice(0, 3, None), slice(3, 5, None)]
    """
    base, extra = divmod(n, size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's ``x`` (rank order), keeping the autograd graph of the local part.

    Shards may differ in length (they are padded for the collective, then trimmed).
    """
    rank, size = world()
    if size == 1:
        return x
    n = torch.tensor([x.shape[0]], device=x.device)
    sizes = [torch.zeros_like(n) for _ in range(size)]
    dist.all_gather(sizes, n)
    longest = int(max(s.item() for s in sizes))
    padded = torch.zeros((longest, *x.shape[1:]), dtype=x.dtype, device=x.device)
    padded[: x.shape[0]] = x.detach()
    parts = [torch.empty_like(padded) for _ in range(size)]
    dist.all_gather(parts, padded)
    parts = [p[: int(s.item())] for p, s in zip(parts, sizes, strict=True)]
    parts[rank] = x
    return torch.cat(parts)


def all_reduce_grads(parameters: Iterable[torch.nn.Parameter]) -> None:
    """Sum gradients over ranks, in one flat buffer (every rank holds the same parameters)."""
    _, size = world()
    if size == 1:
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()
