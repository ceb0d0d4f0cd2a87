"""GradCache (Gao et al., 2021): contrastive batches larger than memory, with exact gradients.

1. Embed the batch chunk by chunk without building graphs, remembering each chunk's RNG state.
2. Compute the loss on the detached embeddings; its backward gives d loss / d embedding.
3. Embed each chunk again with the graph, from the same RNG state (so dropout draws the same
   masks), and back-propagate the cached embedding gradients through it.

Peak memory is one chunk's activations plus the [B, d] embeddings, whatever B is.

Example::

    loss = cached_backward(lambda t: embed(model, t), texts, loss_of, chunk_size=64)
"""

import contextlib
from collections.abc import Callable, Iterator, Sequence

import torch


@contextlib.contextmanager
def replay(state: tuple[torch.Tensor, list[torch.Tensor]]) -> Iterator[None]:
    """Run the block from a saved (CPU, CUDA) RNG state, then restore the state it found."""
    devices = list(range(torch.cuda.device_count())) if state[1] else []
    with torch.random.fork_rng(devices=devices):
        torch.set_rng_state(state[0])
        for device, cuda_state in zip(devices, state[1], strict=True):
            torch.cuda.set_rng_state(cuda_state, device)
        yield


def rng_state() -> tuple[torch.Tensor, list[torch.Tensor]]:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []
    return torch.get_rng_state(), cuda


def cached_backward(
    embed: Callable[[Sequence[str]], torch.Tensor],
    texts: Sequence[str],
    loss_of: Callable[[torch.Tensor], torch.Tensor],
    chunk_size: int,
    backward: Callable[[torch.Tensor], None] = torch.Tensor.backward,
) -> torch.Tensor:
    """Back-propagate ``loss_of(embed(texts))`` into the encoder chunk by chunk; return the loss.

    ``embed`` maps a list of texts to [n, d] embeddings; ``loss_of`` maps all [len(texts), d]
    embeddings to a scalar (it may hold its own parameters, which get their gradients in step 2);
    ``backward`` back-propagates the loss (pass accelerate's, which scales fp16 losses).
    """
    chunks = [texts[i : i + chunk_size] for i in range(0, len(texts), chunk_size)]
    states, reps = [], []
    with torch.no_grad():
        for chunk in chunks:
            states.append(rng_state())
            reps.append(embed(chunk))
    cached = torch.cat(reps).detach().requires_grad_()
    loss = loss_of(cached)
    backward(loss)
    assert cached.grad is not None
    grads = cached.grad.split([len(c) for c in chunks])
    for chunk, state, grad in zip(chunks, states, grads, strict=True):
        with replay(state):
            rep = embed(chunk)
        torch.autograd.backward(rep, grad.to(rep.dtype))
    return loss.detach()
