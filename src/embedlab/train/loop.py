"""The training loop: one optimiser step per mined batch, in the batch file's order.

accelerate places the model and handles mixed precision, so the same loop runs on a CPU or a GPU.

Example::

    student = train(student, pairs, batches, TrainConfig(lr=1e-2), on_step=print)
"""

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import polars as pl
import torch
from accelerate import Accelerator
from sentence_transformers import SentenceTransformer
from sentence_transformers.util import batch_to_device
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from embedlab.schemas import DataError
from embedlab.train.loss import info_nce


@dataclass(frozen=True)
class TrainConfig:
    lr: float = 1e-2
    weight_decay: float = 0.0
    warmup_ratio: float = 0.1
    temperature: float = 0.2
    max_grad_norm: float = 1.0
    mixed_precision: str = "no"  # "no" or "bf16" (GPU)
    seed: int = 0

    def as_params(self) -> dict[str, object]:
        return asdict(self)


def _embed(model: SentenceTransformer, texts: list[str]) -> torch.Tensor:
    features = batch_to_device(model.preprocess(texts), model.device)
    return model(features)["sentence_embedding"]


def _steps(pairs: pl.DataFrame, batches: pl.DataFrame) -> list[dict[str, list[str]]]:
    """Texts of each optimiser step: anchors, positives, and all hard negatives of the batch."""
    by_id = {r["id"]: r for r in pairs.iter_rows(named=True)}
    missing = set(batches["id"]) - set(by_id)
    if missing:
        raise DataError(
            f"batch file names {len(missing)} id(s) absent from the pairs, e.g. "
            f"{sorted(missing)[0]!r}: were the batches mined from other pairs?"
        )
    steps = []
    for (_, _), group in batches.group_by(["epoch", "batch"], maintain_order=True):
        group = group.sort("position")
        ids = group["id"].to_list()
        extra = [j for hn in group["hard_negative_ids"].to_list() for j in hn if j in by_id]
        steps.append(
            {
                "anchor": [by_id[i]["anchor"] for i in ids],
                "positive": [by_id[i]["positive"] for i in ids],
                "negative": [by_id[i]["hard_negative"] for i in ids]
                + [by_id[j]["anchor"] for j in extra],
            }
        )
    return steps


def train(
    model: SentenceTransformer,
    pairs: pl.DataFrame,
    batches: pl.DataFrame,
    config: TrainConfig,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> SentenceTransformer:
    """Train ``model`` in place with InfoNCE over ``batches`` (a Batches table) and return it."""
    torch.manual_seed(config.seed)
    accelerator = Accelerator(mixed_precision=config.mixed_precision)
    steps = _steps(pairs, batches)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(config.warmup_ratio * len(steps)), len(steps)
    )
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    module = accelerator.unwrap_model(model)
    module.train()
    for step, texts in enumerate(tqdm(steps, desc="train", unit="step")):
        started = time.perf_counter()
        with accelerator.autocast():
            anchors = _embed(module, texts["anchor"])
            positives = _embed(module, texts["positive"])
            negatives = _embed(module, texts["negative"])
            loss = info_nce(anchors, positives, negatives, config.temperature)
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        grad_norm = accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        seconds = time.perf_counter() - started
        if on_step is not None:
            on_step(
                step,
                {
                    "loss": float(loss.detach()),
                    "lr": scheduler.get_last_lr()[0],
                    "grad_norm": float(grad_norm),
                    "examples_per_s": len(texts["anchor"]) / seconds,
                },
            )
    module.eval()
    return module
