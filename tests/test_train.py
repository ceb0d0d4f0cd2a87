import numpy as np
import polars as pl
import torch
from sentence_transformers import SentenceTransformer

from embedlab.encode import encode
from embedlab.mine import random_batches
from embedlab.mine.batches import batch_table
from embedlab.train import TrainConfig, build_student, info_nce, train


def test_info_nce_matches_explicit_softmax():
    torch.manual_seed(0)
    a, p, n = torch.randn(4, 8), torch.randn(4, 8), torch.randn(3, 8)
    loss = info_nce(a, p, n, temperature=0.1)
    an = a / a.norm(dim=1, keepdim=True)
    cand = torch.cat([p, n])
    cand = cand / cand.norm(dim=1, keepdim=True)
    logits = an @ cand.T / 0.1
    expected = -torch.log(torch.exp(logits.diag()[:4]) / torch.exp(logits).sum(1)).mean()
    torch.testing.assert_close(loss, expected)


def test_loss_is_lower_when_positives_match():
    a = torch.eye(4)
    assert info_nce(a, a, temperature=0.1) < info_nce(a, a.roll(1, 0), temperature=0.1)


def _batches(pairs: pl.DataFrame, batch_size: int, epochs: int) -> pl.DataFrame:
    emb = np.eye(pairs.height, dtype=np.float32)
    order, _, _ = random_batches(emb, None, batch_size, epochs, seed=0)
    return batch_table(order, pairs["id"].to_list())


def test_static_student_learns_and_exports(pairs, tmp_path):
    student = build_student("static", "sentence-transformers/all-MiniLM-L6-v2")
    batches = _batches(pairs, 16, 6)
    seen: list[dict[str, float]] = []
    trained = train(
        student, pairs, batches, TrainConfig(lr=0.05), on_step=lambda s, m: seen.append(m)
    )
    assert len(seen) == batches.select("epoch", "batch").unique().height == 36
    first, last = np.mean([m["loss"] for m in seen[:6]]), np.mean([m["loss"] for m in seen[-6:]])
    assert last < first * 0.8, (first, last)
    trained.save(str(tmp_path / "student"))
    loaded = SentenceTransformer(str(tmp_path / "student"), device="cpu")
    texts = pairs["anchor"].to_list()[:10]
    ours = encode(trained, texts)
    theirs = loaded.encode(texts, normalize_embeddings=True)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_training_is_reproducible(pairs):
    batches = _batches(pairs, 16, 2)
    out = []
    for _ in range(2):
        student = build_student("static", "sentence-transformers/all-MiniLM-L6-v2")
        train(student, pairs, batches, TrainConfig(lr=0.05, seed=3))
        out.append(encode(student, pairs["anchor"].to_list()[:8]))
    np.testing.assert_array_equal(out[0], out[1])


def test_batches_naming_unknown_ids_are_refused(pairs):
    import pytest

    from embedlab.schemas import DataError

    batches = _batches(pairs, 16, 1).with_columns(pl.lit("nope").alias("id"))
    student = build_student("static", "sentence-transformers/all-MiniLM-L6-v2")
    with pytest.raises(DataError, match="'nope'"):
        train(student, pairs, batches, TrainConfig())
