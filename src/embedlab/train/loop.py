"""The training loop: one optimiser step per mined batch, in the batch file's order.

Each step embeds the batch's anchors, positives and negatives (the synthesized hard negatives
and any mined ones) in one pass and applies InfoNCE over the whole mined batch. The batch is
never reshuffled or split into smaller optimiser steps, since its composition is the experiment:

- several processes (``accelerate launch``) split the mined batch and all-gather embeddings,
  so every example still sees every other one of the batch as a negative (see ``distributed``);
- ``chunk_size`` bounds memory with GradCache, leaving the gradients unchanged (``gradcache``);
- checkpoints every ``checkpoint_every`` steps let a killed run resume exactly (``checkpoint``);
- every ``eval_every`` steps the student is scored on STS-B dev and the best one is kept.

accelerate picks the device and runs mixed precision (bf16 on GPU), so the same loop runs on a
CPU, a GPU or several.

Example::

    result = train(student, pairs, batches, TrainConfig(lr=3e-3), on_step=print)
    result.model.save("my-student")
"""

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import torch
import torch.distributed as dist
from accelerate import Accelerator
from accelerate.utils import set_seed
from sentence_transformers import SentenceTransformer
from sentence_transformers.util import batch_to_device
from torch import nn
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from embedlab.errors import SettingError
from embedlab.schemas import DataError
from embedlab.settings.train import TrainConfig
from embedlab.train import checkpoint
from embedlab.train.distributed import all_reduce_grads, gather_with_grad, shard, world
from embedlab.train.gradcache import cached_backward
from embedlab.train.loss import info_nce

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Step:
    """The texts of one mined batch; positives of unlabeled rows are their anchors (SimCSE)."""

    anchor: list[str]
    positive: list[str]
    negative: list[str]
    weight: list[float] | None

    def local(self, rank: int, size: int) -> tuple[list[str], list[str], list[str]]:
        """This rank's contiguous shard of anchors/positives and of negatives."""
        rows, negs = shard(len(self.anchor), rank, size), shard(len(self.negative), rank, size)
        return self.anchor[rows], self.positive[rows], self.negative[negs]


@dataclass
class Trained:
    model: SentenceTransformer
    steps: int
    resumed_from: int  # the checkpoint step training resumed from (0: a fresh start)
    dev_spearman: float | None  # the best dev score, when a dev scorer was given
    dev_step: int | None  # the step that scored it (the returned model is that one)


def check_batches(batches: pl.DataFrame, ids: set[str], batch_size: int | None) -> None:
    """Refuse a batch file that cannot be what a miner wrote for these pairs: a batch whose
    size is not ``batch_size`` (the grid's B, when given), a hard negative that is the row's
    own id or an id of no pair. The error names the (epoch, batch, position) and the id."""
    where = "epoch {epoch}, batch {batch}, position {position} (id {id!r})"
    if batch_size is not None:
        sizes = batches.group_by("epoch", "batch").len().sort("epoch", "batch")
        wrong = sizes.filter(pl.col("len") != batch_size)
        if wrong.height:
            first = wrong.row(0, named=True)
            raise DataError(
                f"epoch {first['epoch']}, batch {first['batch']} has {first['len']} rows, but "
                f"the batch size is {batch_size} ({wrong.height} of {sizes.height} batches "
                "differ): were the batches mined for another batch size?"
            )
    negatives = batches.explode("hard_negative_ids").drop_nulls("hard_negative_ids")
    own = negatives.filter(pl.col("hard_negative_ids") == pl.col("id"))
    if own.height:
        raise DataError(f"{where.format(**own.row(0, named=True))}: its own id as hard negative")
    unknown = negatives.filter(~pl.col("hard_negative_ids").is_in(list(ids)))
    if unknown.height:
        row = unknown.row(0, named=True)
        raise DataError(
            f"{where.format(**row)}: hard negative {row['hard_negative_ids']!r} is no pair's id"
            f" ({unknown.height} such)"
        )


def plan(
    pairs: pl.DataFrame,
    batches: pl.DataFrame,
    pair_weights: str | None = None,
    use_hard_negative: bool = True,
) -> list[Step]:
    """Texts of each optimiser step: anchors, positives, and all hard negatives of the batch
    (the rows' own unless ``use_hard_negative`` is false, and the miner's)."""
    by_id = {r["id"]: r for r in pairs.iter_rows(named=True)}
    missing = set(batches["id"]) - set(by_id)
    if missing:
        raise DataError(
            f"batch file names {len(missing)} id(s) absent from the pairs, e.g. "
            f"{sorted(missing)[0]!r}: were the batches mined from other pairs?"
        )
    if pair_weights is not None and pair_weights not in pairs.columns:
        raise DataError(f"pairs have no column {pair_weights!r} to weigh the loss with")
    steps, own = [], use_hard_negative
    for _, group in batches.group_by(["epoch", "batch"], maintain_order=True):
        rows = [by_id[i] for i in group.sort("position")["id"]]
        mined = [by_id[j] for hn in group["hard_negative_ids"] for j in hn]
        steps.append(
            Step(
                anchor=[r["anchor"] for r in rows],
                positive=[r["positive"] or r["anchor"] for r in rows],
                negative=[r["hard_negative"] for r in rows if r["hard_negative"] and own]
                + [r["anchor"] for r in mined],
                weight=None if pair_weights is None else [float(r[pair_weights]) for r in rows],
            )
        )
    return steps


def fingerprint(
    pairs: pl.DataFrame, batches: pl.DataFrame, config: TrainConfig, *modules: nn.Module
) -> str:
    """Hash of the inputs, the config and the untrained ``modules`` (student and head: their
    structure, settings such as pooling and max length, and initial weights): a checkpoint
    resumes only the run it belongs to."""
    h = hashlib.sha256(json.dumps(config.as_params(), sort_keys=True).encode())
    h.update(f"checkpoint format {checkpoint.FORMAT}".encode())
    for frame in (pairs, batches):
        h.update(frame.hash_rows(seed=0).to_numpy().tobytes())
    for module in modules:
        h.update(repr(module).encode())
        for name, tensor in module.state_dict().items():
            h.update(name.encode())
            flat = tensor.detach().cpu().contiguous().reshape(-1)
            h.update(flat.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def _embed(model: SentenceTransformer, texts: Sequence[str], counter: list[int]) -> torch.Tensor:
    features = model.preprocess(list(texts))
    mask = features.get("attention_mask")
    counter[0] += int(mask.sum()) if mask is not None else int(features["input_ids"].numel())
    return model(batch_to_device(features, model.device))["sentence_embedding"]


def _split(n: int, parts: int) -> list[slice]:
    """``parts`` contiguous slices covering range(n), sizes differing by at most one."""
    return [shard(n, i, parts) for i in range(parts)]


def backward(
    model: SentenceTransformer,
    head: nn.Module,
    step: Step,
    config: TrainConfig,
    accelerator: Accelerator,
) -> tuple[torch.Tensor, int]:
    """Forward and backward of one mined batch; returns (loss, tokens embedded on all ranks).

    This rank embeds its shard, the loss is taken over the gathered whole batch, and the
    parameter gradients are summed over ranks: they equal the single-process gradients.
    """
    rank, size = world()
    anchor, positive, negative = step.local(rank, size)
    texts = [*anchor, *positive, *negative]
    n = (len(anchor), len(positive), len(negative))
    weights = None if step.weight is None else torch.tensor(step.weight, device=model.device)
    tokens = [0]
    # Embed in order of length so that each forward pads little; put rows back for the loss.
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    by_length = [texts[i] for i in order]
    inverse = torch.empty(len(order), dtype=torch.long)
    inverse[order] = torch.arange(len(order))

    def embed(chunk: Sequence[str]) -> torch.Tensor:
        return _embed(model, chunk, tokens)

    def loss_of(reps_by_length: torch.Tensor) -> torch.Tensor:
        reps = reps_by_length[inverse.to(reps_by_length.device)]
        anchors, positives, negatives = (gather_with_grad(head(x)) for x in reps.split(n))
        return info_nce(
            anchors, positives, negatives, config.temperature, config.symmetric, weights
        )

    with accelerator.autocast():
        if config.chunk_size:
            loss = cached_backward(
                embed, by_length, loss_of, config.chunk_size, accelerator.backward
            )
        else:
            # a transformer pads each forward to its longest text: a few length groups waste
            # less than one padded batch (a static student has no padding: one call)
            groups = config.length_groups if hasattr(model[0], "auto_model") else 1
            groups = groups if len(texts) >= 16 * groups else 1
            parts = [embed(by_length[g]) for g in _split(len(texts), groups)]
            loss = loss_of(torch.cat(parts))
            accelerator.backward(loss)
    all_reduce_grads(p for p in [*model.parameters(), *head.parameters()] if p.requires_grad)
    total = tokens[0]
    if size > 1:
        count = torch.tensor([total], device=model.device)
        dist.all_reduce(count)
        total = int(count.item())
    return loss.detach(), total


def train(
    model: SentenceTransformer,
    pairs: pl.DataFrame,
    batches: pl.DataFrame,
    config: TrainConfig,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    head: nn.Module | None = None,
    score_dev: Callable[[SentenceTransformer], float] | None = None,
    checkpoint_dir: str | Path | None = None,
) -> Trained:
    """Train ``model`` in place with InfoNCE over ``batches`` (a Batches table).

    ``head`` is a train-time projection (SimCSE's MLP) trained but not returned. ``score_dev``
    scores the model on a dev set (STS-B dev: ``embedlab.evaluate.dev_scorer``) every
    ``config.eval_every`` steps (0: never), and the best-scoring model is kept; without a scorer
    the last model is returned. ``checkpoint_dir`` holds the checkpoints that a restarted run
    resumes from. ``on_step(step, metrics)`` is called on the
    main process after every step (loss, lr, grad_norm, examples/s, tokens/s, dev score).
    """
    set_seed(config.seed)
    accelerator = Accelerator(mixed_precision=config.mixed_precision)
    rank, _ = world()
    steps = plan(pairs, batches, config.pair_weights, config.use_hard_negative)
    _check(steps, pairs, model)
    head = head if head is not None else nn.Identity()
    model.to(accelerator.device)
    head.to(accelerator.device)
    params, optimizer, scheduler = _optimiser(model, head, config, len(steps), accelerator)
    folder = Path(checkpoint_dir) if checkpoint_dir else None
    stamp = fingerprint(pairs, batches, config, model, head) if folder else None
    best, start = checkpoint.Best(), 0
    if (found := checkpoint.latest(folder, stamp)) is not None:
        best, start = _resume(found, model, head, optimizer, scheduler), found.step
        log.info("resuming from %s step %d of %d", folder, start, len(steps))

    model.train()
    head.train()
    bar = tqdm(range(start, len(steps)), desc="train", unit="step", disable=rank != 0)
    for i in bar:
        metrics = _step(model, head, steps[i], config, accelerator, params, optimizer, scheduler)
        done = i + 1
        due = config.eval_every and (done % config.eval_every == 0 or done == len(steps))
        if score_dev and due and rank == 0:  # the dev score, keeping the best model
            metrics["dev_spearman"] = score = score_dev(model)
            best.offer(score, done, model)
            bar.set_postfix(dev=f"{score:.2f}", best=f"{best.score:.2f}")
        if rank == 0 and on_step is not None:
            on_step(i, metrics)
        if folder and config.checkpoint_every and done % config.checkpoint_every == 0:
            if done < len(steps):
                state = checkpoint.TrainState(
                    model.state_dict(),
                    head.state_dict(),
                    optimizer.state_dict(),
                    scheduler.state_dict(),
                    best,
                    stamp,
                )
                checkpoint.save(folder, done, state)
    if best.weights is not None:
        model.load_state_dict(best.weights)
    model.eval()
    return Trained(model, len(steps), start, best.score, best.step)


def _check(steps: Sequence[Step], pairs: pl.DataFrame, model: nn.Module) -> None:
    """Stop on batches the processes cannot share; warn when unsupervised rows (no positive)
    would teach nothing (a student without dropout embeds both views alike)."""
    _, size = world()
    if any(len(s.anchor) < size for s in steps):
        raise SettingError(f"a mined batch is smaller than the {size} processes that share it")
    unlabeled = pairs["positive"].null_count()
    if unlabeled and not any(isinstance(m, nn.Dropout) and m.p > 0 for m in model.modules()):
        log.warning(
            "%d row(s) have no positive (unsupervised SimCSE) but the student has no dropout: "
            "their two views are identical and teach nothing",
            unlabeled,
        )


def _optimiser(
    model: nn.Module, head: nn.Module, config: TrainConfig, steps: int, accelerator: Accelerator
) -> tuple[list[nn.Parameter], torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """AdamW over the trainable parameters of student and head, linear warm-up then decay."""
    params = [p for p in [*model.parameters(), *head.parameters()] if p.requires_grad]
    optimizer = torch.optim.AdamW(
        params, lr=config.lr, weight_decay=config.weight_decay, fused=True
    )  # fused: one kernel for all parameters, 4x faster than the loop on a CPU
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * steps), steps)
    return params, accelerator.prepare(optimizer), scheduler


def _resume(found: checkpoint.Checkpoint, model, head, optimizer, scheduler) -> checkpoint.Best:
    """Put every state of a checkpoint back (weights, optimiser, schedule, RNG); its best."""
    model.load_state_dict(found.state.model)
    head.load_state_dict(found.state.head)
    optimizer.load_state_dict(found.state.optimizer)
    scheduler.load_state_dict(found.state.scheduler)
    checkpoint.set_rng_states(found.rng)
    return found.state.best


def _step(model, head, step: Step, config: TrainConfig, accelerator, params, optimizer, scheduler):
    """One optimiser step over one mined batch; its figures (loss, lr, grad norm, speed)."""
    started = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    loss, tokens = backward(model, head, step, config, accelerator)
    grad_norm = accelerator.clip_grad_norm_(params, config.max_grad_norm)
    optimizer.step()
    scheduler.step()
    seconds = time.perf_counter() - started
    return {
        "loss": float(loss.detach()),
        "lr": scheduler.get_last_lr()[0],
        "grad_norm": float(grad_norm),
        "examples_per_s": len(step.anchor) / seconds,
        "tokens_per_s": tokens / seconds,
    }
