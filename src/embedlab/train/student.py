"""Student encoders, built as sentence-transformers models so the export loads anywhere.

kind="static": a token-embedding bag (sentence-transformers' StaticEmbedding) whose table is
the ``init`` model's input token embeddings (``static_init="teacher"``) or random normal
(``static_init="random"``, width ``dim``); it trains about a thousand examples per second on
two CPU cores.
kind="transformer": the ``init`` encoder (any Hugging Face or sentence-transformers model) with
``pooling`` "mean", "cls" or "cls_mlp" (SimCSE's: CLS with an MLP on top during training only;
the export keeps the plain CLS vector, as SimCSE evaluates). Without ``pooling`` a
sentence-transformers model keeps its own pooling and a bare Hugging Face encoder gets "mean".

Example::

    student = build_student("static", "sentence-transformers/all-MiniLM-L6-v2")
    head = train_head(student, "cls_mlp")  # identity unless pooling is cls_mlp
"""

from collections.abc import Sequence
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import (
    Pooling,
    StaticEmbedding,
    Transformer,
)
from torch import nn

from embedlab.errors import SettingError
from embedlab.resolve import resolve_model
from embedlab.settings.train import POOLINGS, StudentSettings


def build_student(
    kind: str,
    init: str,
    mirrors: Sequence[str] = (),
    max_length: int | None = None,
    pooling: str | None = None,
    static_init: str = StudentSettings.static_init,
    dim: int = StudentSettings.dim,
    seed: int = 0,
) -> SentenceTransformer:
    """Return the untrained student, on the CPU (the trainer moves it)."""
    if pooling is not None and pooling not in POOLINGS:
        raise SettingError(f"unknown pooling {pooling!r}; expected one of {POOLINGS}")
    path = Path(resolve_model(init, mirrors).path)
    if kind == "transformer":
        is_st = (path / "modules.json").exists()
        if is_st and pooling is None:
            model = SentenceTransformer(str(path), device="cpu")
        else:
            body = Transformer(str(path), max_seq_length=max_length)
            mode = "cls" if (pooling or "mean").startswith("cls") else "mean"
            head = Pooling(body.get_embedding_dimension(), pooling_mode=mode)
            model = SentenceTransformer(modules=[body, head], device="cpu")
        if max_length:
            model.max_seq_length = max_length
        return model
    if kind == "static":
        if static_init == "teacher":
            base = Transformer(str(path))
            tokenizer = base.tokenizer
            weights = base.auto_model.get_input_embeddings().weight.detach().clone()
        elif static_init == "random":  # only the tokenizer is needed, not the weights
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(str(path))
            generator = torch.Generator().manual_seed(seed)
            weights = torch.randn(len(tokenizer), dim, generator=generator) * dim**-0.5
        else:
            raise SettingError(
                f"unknown static_init {static_init!r}; expected 'teacher' or 'random'"
            )
        static = StaticEmbedding(tokenizer, embedding_weights=weights)
        return SentenceTransformer(modules=[static], device="cpu")
    raise SettingError(f"unknown student kind {kind!r}; expected 'static' or 'transformer'")


def student_from(
    settings: StudentSettings, mirrors: Sequence[str], seed: int
) -> SentenceTransformer:
    """The untrained student that ``settings`` (the ``train`` section's student keys) describe:
    the one place a stage turns its settings into a student (train and sweep both call it).

    Example: ``student_from(TrainSettings(student="transformer"), ["../shared/data"], seed=0)``
    """
    return build_student(
        settings.student,
        settings.init,
        mirrors,
        max_length=settings.max_length,
        pooling=settings.pooling,
        static_init=settings.static_init,
        dim=settings.dim,
        seed=seed,
    )


def train_head(model: SentenceTransformer, pooling: str | None) -> nn.Module:
    """The train-time projection: SimCSE's Linear+Tanh for "cls_mlp", else the identity.

    It is trained with the student but not exported.
    """
    if pooling != "cls_mlp":
        return nn.Identity()
    dim = model.get_embedding_dimension()
    return nn.Sequential(nn.Linear(dim, dim), nn.Tanh())
