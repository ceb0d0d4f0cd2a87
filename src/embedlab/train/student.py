"""Student encoders, built as sentence-transformers models so the export loads anywhere.

kind="static": a token-embedding bag (sentence-transformers' StaticEmbedding) initialised from
the ``init`` model's input token embeddings; it trains thousands of examples per second on a CPU.
kind="transformer": the ``init`` model itself (any Hugging Face / sentence-transformers encoder).

Example::

    student = build_student("static", "sentence-transformers/all-MiniLM-L6-v2")
"""

from collections.abc import Sequence

from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import StaticEmbedding

from embedlab.encode import load_encoder


def build_student(
    kind: str, init: str, mirrors: Sequence[str] = (), max_length: int | None = None
) -> SentenceTransformer:
    """Return the untrained student (on CPU; the trainer moves it)."""
    base = load_encoder(init, mirrors, device="cpu")
    if kind == "transformer":
        if max_length:
            base.max_seq_length = max_length
        return base
    if kind == "static":
        backbone = base[0].auto_model
        weights = backbone.get_input_embeddings().weight.detach().clone()
        static = StaticEmbedding(base.tokenizer, embedding_weights=weights)
        return SentenceTransformer(modules=[static], device="cpu")
    raise ValueError(f"unknown student kind {kind!r}; expected 'static' or 'transformer'")
