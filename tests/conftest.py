"""Shared fixtures: the data mirror, an isolated MLflow store, the packaged teacher model."""

import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
# How long a test waits for a subprocess before it calls it hung. Generous on purpose: no test
# measures speed, and a busy machine must not fail the suite; raise it on a slower one
# (EMBEDLAB_TEST_TIMEOUT_S=7200 make test).
TIMEOUT_S = int(os.environ.get("EMBEDLAB_TEST_TIMEOUT_S", "3600"))
MIRROR = (REPO / ".." / "shared" / "data").resolve()


def load_script(relative: str):
    """A script of the repository that is not part of the package (``envs/render.py``,
    ``benchmarks/readme.py``), imported from its path."""
    import importlib.util

    path = REPO / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def mirror() -> Path:
    assert MIRROR.exists(), f"the data mirror is expected at {MIRROR}"
    return MIRROR


@pytest.fixture(autouse=True)
def tracking(tmp_path, monkeypatch) -> str:
    """Every test logs to its own SQLite MLflow store, never to results/."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("EMBEDLAB_TRACKING_URI", uri)
    monkeypatch.setenv("EMBEDLAB_EXPERIMENT", "test")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return uri


@pytest.fixture(scope="session")
def minilm():
    from embedlab.encode import load_encoder

    return load_encoder("sentence-transformers/all-MiniLM-L6-v2", device="cpu")


def make_pairs(n: int, seed: int = 0) -> pl.DataFrame:
    """Tiny hand-made pairs table (valid ``Pairs`` schema) with distinct texts."""
    rng = np.random.default_rng(seed)
    subjects = [
        "The cat",
        "A man",
        "The girl",
        "My neighbour",
        "The old dog",
        "A child",
        "The teacher",
        "Our team",
        "The farmer",
        "A musician",
    ]
    verbs = ["plays", "reads", "paints", "watches", "repairs", "sells", "cooks", "finds"]
    objects = [
        "a guitar",
        "the newspaper",
        "a red fence",
        "the stars",
        "an old car",
        "fresh bread",
        "a small boat",
        "the garden",
        "a letter",
        "some apples",
    ]
    rows = []
    seen = set()
    while len(rows) < n:
        s, v, o = (rng.choice(x) for x in (subjects, verbs, objects))
        anchor = f"{s} {v} {o}."
        if anchor in seen:
            continue
        seen.add(anchor)
        rows.append(
            {
                "id": f"id{len(rows):04d}",
                "anchor": anchor,
                "positive": f"{o.capitalize()} is what {s.lower()} {v}.",
                "hard_negative": f"{s} never {v[:-1]} {o}.",
                "mode": "partial",
                "generator": "hand",
                "prompt_id": "test",
                "copy_similarity": 0.5,
            }
        )
    return pl.DataFrame(rows)


@pytest.fixture
def pairs() -> pl.DataFrame:
    return make_pairs(96)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide BERT with random weights and MiniLM's tokenizer: a transformer student
    small enough to train in a test (its scores mean nothing, its gradients are real)."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from embedlab.resolve import resolve_model

    folder = tmp_path_factory.mktemp("tiny-bert")
    minilm = resolve_model("sentence-transformers/all-MiniLM-L6-v2").path
    tokenizer = AutoTokenizer.from_pretrained(str(minilm))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )
    torch.manual_seed(0)  # the same random weights in every session
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
