import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from accelerate import Accelerator
from sentence_transformers import SentenceTransformer
from torch import nn

from embedlab import schemas
from embedlab.encode import encode
from embedlab.evaluate import dev_scorer, evaluate_sts, load_sts
from embedlab.mine import random_batches
from embedlab.mine.batches import batch_table
from embedlab.schemas import DataError
from embedlab.train import TrainConfig, build_student, info_nce, train, train_head
from embedlab.train.loop import backward, plan

from .conftest import TIMEOUT_S

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
TESTS = Path(__file__).parent


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


def test_info_nce_symmetric_and_weighted_terms():
    torch.manual_seed(1)
    a, p = torch.randn(5, 8), torch.randn(5, 8)
    both = info_nce(a, p, temperature=0.1, symmetric=True)
    torch.testing.assert_close(
        both, (info_nce(a, p, temperature=0.1) + info_nce(p, a, temperature=0.1)) / 2
    )
    # a weight of zero removes a row: the loss equals the mean of the other rows' terms
    w = torch.tensor([1.0, 1.0, 0.0, 1.0, 1.0])
    rows = torch.nn.functional.cross_entropy(
        torch.nn.functional.normalize(a) @ torch.nn.functional.normalize(p).T / 0.1,
        torch.arange(5),
        reduction="none",
    )
    torch.testing.assert_close(info_nce(a, p, temperature=0.1, weights=w), rows[w > 0].mean())


def test_loss_is_lower_when_positives_match():
    a = torch.eye(4)
    assert info_nce(a, a, temperature=0.1) < info_nce(a, a.roll(1, 0), temperature=0.1)


def _batches(pairs: pl.DataFrame, batch_size: int, epochs: int) -> pl.DataFrame:
    emb = np.eye(pairs.height, dtype=np.float32)
    order, _, _ = random_batches(emb, None, batch_size, epochs, seed=0)
    return batch_table(order, pairs["id"].to_list())


def test_static_student_learns_and_exports(pairs, tmp_path):
    student = build_student("static", MINILM)
    batches = _batches(pairs, 16, 6)
    seen: list[dict[str, float]] = []
    result = train(
        student, pairs, batches, TrainConfig(lr=0.05), on_step=lambda s, m: seen.append(m)
    )
    assert len(seen) == result.steps == batches.select("epoch", "batch").unique().height == 36
    assert all(m["tokens_per_s"] > 0 and m["examples_per_s"] > 0 for m in seen)
    first, last = np.mean([m["loss"] for m in seen[:6]]), np.mean([m["loss"] for m in seen[-6:]])
    assert last < first * 0.8, (first, last)
    result.model.save(str(tmp_path / "student"))
    loaded = SentenceTransformer(str(tmp_path / "student"), device="cpu")
    texts = pairs["anchor"].to_list()[:10]
    np.testing.assert_allclose(
        encode(result.model, texts), loaded.encode(texts, normalize_embeddings=True), atol=1e-5
    )


def test_training_is_reproducible(pairs):
    batches = _batches(pairs, 16, 2)
    out = []
    for _ in range(2):
        student = build_student("static", MINILM)
        train(student, pairs, batches, TrainConfig(lr=0.05, seed=3))
        out.append(encode(student, pairs["anchor"].to_list()[:8]))
    np.testing.assert_array_equal(out[0], out[1])


def test_batches_naming_unknown_ids_are_refused(pairs):
    batches = _batches(pairs, 16, 1).with_columns(pl.lit("nope").alias("id"))
    student = build_student("static", MINILM)
    with pytest.raises(DataError, match="'nope'"):
        train(student, pairs, batches, TrainConfig())


def test_unlabeled_rows_use_their_anchor_and_missing_hard_negatives_are_skipped(pairs):
    pairs = pairs.with_columns(
        pl.when(pl.int_range(pl.len()) % 2 == 0)
        .then(None)
        .otherwise(pl.col("positive"))
        .alias("positive"),
        pl.when(pl.int_range(pl.len()) % 3 == 0)
        .then(None)
        .otherwise(pl.col("hard_negative"))
        .alias("hard_negative"),
    )
    schemas.validate(pairs, schemas.Pairs, "test")
    step = plan(pairs, _batches(pairs, 12, 1))[0]
    by_anchor = {r["anchor"]: r for r in pairs.iter_rows(named=True)}
    for anchor, positive in zip(step.anchor, step.positive, strict=True):
        assert positive == (by_anchor[anchor]["positive"] or anchor)
    assert len(step.negative) == sum(by_anchor[a]["hard_negative"] is not None for a in step.anchor)
    # SynCSE's positives-only ablation: the rows' own hard negatives leave the loss
    bare = plan(pairs, _batches(pairs, 12, 1), use_hard_negative=False)[0]
    assert bare.negative == [] and bare.anchor == step.anchor and bare.positive == step.positive


def _grads(model: torch.nn.Module, head: torch.nn.Module) -> dict[str, torch.Tensor]:
    named = [*model.named_parameters(), *(("head." + k, p) for k, p in head.named_parameters())]
    return {k: p.grad.clone() for k, p in named if p.grad is not None}


def _step_grads(tiny_bert, pairs, config, pooling="mean", seed=0, dropout=True):
    """Gradients of the first mined batch (32 rows: 96 texts) for a tiny transformer."""
    model = build_student("transformer", str(tiny_bert), pooling=pooling, max_length=32)
    torch.manual_seed(7)
    head = train_head(model, pooling)
    model.train(dropout)
    step = plan(pairs, _batches(pairs, 32, 1))[0]
    torch.manual_seed(seed)
    loss, _ = backward(model, head, step, config, Accelerator(cpu=True))
    return loss, _grads(model, head)


def test_gradcache_gives_the_full_batch_gradients(tiny_bert, pairs):
    full_loss, full = _step_grads(tiny_bert, pairs, TrainConfig(), "cls_mlp", dropout=False)
    loss, cached = _step_grads(
        tiny_bert, pairs, TrainConfig(chunk_size=10), "cls_mlp", dropout=False
    )
    torch.testing.assert_close(loss, full_loss, rtol=1e-5, atol=1e-6)
    assert full.keys() == cached.keys() and any(k.startswith("head.") for k in full)
    for name in full:
        torch.testing.assert_close(cached[name], full[name], rtol=1e-4, atol=1e-6, msg=name)


def test_length_groups_pad_less_and_leave_the_gradients_as_they_were(tiny_bert, pairs):
    """Texts embedded in 3 length-sorted forwards (the default) count fewer padded tokens than
    one forward, with the loss and gradients of one forward."""
    padded: dict[int, int] = {}
    for groups in (1, 3):
        model = build_student("transformer", str(tiny_bert), pooling="mean", max_length=32)
        model.eval()
        preprocess = model.preprocess
        padded[groups] = 0

        def counting(texts, groups=groups, preprocess=preprocess):
            features = preprocess(texts)
            padded[groups] += features["input_ids"].numel()  # positions, padding included
            return features

        model.preprocess = counting
        step = plan(pairs, _batches(pairs, 32, 1))[0]
        config = TrainConfig(length_groups=groups)
        loss, _ = backward(model, nn.Identity(), step, config, Accelerator(cpu=True))
        if groups == 1:
            ref_loss, ref = loss, _grads(model, nn.Identity())
        else:
            torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-6)
            grads = _grads(model, nn.Identity())
            for name in ref:
                torch.testing.assert_close(grads[name], ref[name], rtol=1e-4, atol=1e-6)
    assert padded[3] < padded[1]


def test_gradcache_replays_dropout(tiny_bert, pairs, monkeypatch):
    """With dropout on, the second pass must draw the masks of the first: compare with the
    gradients of a chunked forward that keeps its graph (same RNG use, no cache)."""
    import embedlab.train.gradcache as gc

    loss, cached = _step_grads(tiny_bert, pairs, TrainConfig(chunk_size=10), seed=5)

    def plain(embed, texts, loss_of, chunk_size, backward):
        reps = torch.cat(
            [embed(texts[i : i + chunk_size]) for i in range(0, len(texts), chunk_size)]
        )
        out = loss_of(reps)
        backward(out)
        return out.detach()

    monkeypatch.setattr("embedlab.train.loop.cached_backward", plain)
    ref_loss, ref = _step_grads(tiny_bert, pairs, TrainConfig(chunk_size=10), seed=5)
    torch.testing.assert_close(loss, ref_loss)
    for name in ref:
        torch.testing.assert_close(cached[name], ref[name], rtol=1e-4, atol=1e-6, msg=name)
    # and without the replay the masks differ, so the gradients do too
    monkeypatch.setattr(gc, "replay", lambda state: __import__("contextlib").nullcontext())
    monkeypatch.setattr("embedlab.train.loop.cached_backward", gc.cached_backward)
    _, unreplayed = _step_grads(tiny_bert, pairs, TrainConfig(chunk_size=10), seed=5)
    name = next(k for k in ref if "encoder.layer.0" in k and "weight" in k)
    assert not torch.allclose(unreplayed[name], ref[name], rtol=1e-4, atol=1e-6)


def test_two_processes_give_the_single_process_loss_and_gradients(pairs, tmp_path):
    pairs_path, batches_path = tmp_path / "pairs.parquet", tmp_path / "batches.parquet"
    schemas.write(pairs, pairs_path, schemas.Pairs)
    # a mined batch of 33 rows with 5 mined negatives: uneven shards over 2 ranks
    batches = _batches(pairs, 33, 1).with_columns(
        pl.when(pl.col("position") < 5)
        .then(pl.concat_list(pl.lit(pairs["id"][90])))
        .otherwise(pl.lit([], dtype=pl.List(pl.String)))
        .alias("hard_negative_ids")
    )
    schemas.write(batches, batches_path, schemas.Batches)
    single = tmp_path / "single.pt"
    double = tmp_path / "double.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_PORT": "29531"}
    torchrun = Path(sys.executable).with_name("torchrun")
    for out, n in ((single, 1), (double, 2)):
        subprocess.run(
            [
                str(torchrun),
                "--nproc_per_node",
                str(n),
                str(TESTS / "dist_step.py"),
                str(out),
                str(pairs_path),
                str(batches_path),
            ],
            check=True,
            env=env,
            timeout=TIMEOUT_S,
        )
    one, two = torch.load(single), torch.load(double)
    assert (one["world"], two["world"]) == (1, 2)
    assert one["tokens"] == two["tokens"] > 0
    torch.testing.assert_close(two["loss"], one["loss"], rtol=1e-6, atol=1e-6)
    assert one["grads"].keys() == two["grads"].keys()
    for name, grad in one["grads"].items():
        assert grad.abs().sum() > 0
        torch.testing.assert_close(two["grads"][name], grad, rtol=1e-5, atol=1e-8, msg=name)


def _cli_train(pairs_path, batches_path, out, ckpt, *extra) -> subprocess.Popen:
    args = [sys.executable, "-m", "embedlab.cli", "train", "--student", "static"]
    args += ["--static-init", "random", "--dim", "64", "--pairs", str(pairs_path)]
    args += ["--batches", str(batches_path), "--out", str(out), "--lr", "0.05"]
    args += ["--checkpoint-every", "25", "--checkpoint-dir", str(ckpt), "--eval-every", "0"]
    args += extra
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return {
        str(p.relative_to(folder)) + ":" + k: v
        for p in sorted(folder.rglob("*.safetensors"))
        for k, v in load_file(p).items()
    }


def test_a_run_killed_midway_resumes_to_the_same_weights(pairs, tmp_path):
    pairs_path, batches_path = tmp_path / "pairs.parquet", tmp_path / "batches.parquet"
    schemas.write(pairs, pairs_path, schemas.Pairs)
    schemas.write(_batches(pairs, 8, 100), batches_path, schemas.Batches)  # 1200 steps
    whole = _cli_train(pairs_path, batches_path, tmp_path / "whole", tmp_path / "ck-whole")
    assert whole.wait(timeout=TIMEOUT_S) == 0, whole.stderr.read().decode()[-2000:]

    ckpt = tmp_path / "ck-killed"
    killed = _cli_train(pairs_path, batches_path, tmp_path / "killed", ckpt)
    deadline = time.time() + TIMEOUT_S
    while not any(int(p.name[5:]) >= 100 for p in ckpt.glob("step-??????")):
        assert killed.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert not (tmp_path / "killed").exists()
    step = int(next(ckpt.glob("step-??????")).name[5:])
    assert step < 1200

    resumed = _cli_train(pairs_path, batches_path, tmp_path / "killed", ckpt)
    _, err = resumed.communicate(timeout=TIMEOUT_S)
    assert resumed.returncode == 0, err.decode()[-2000:]
    assert "resuming from" in err.decode()
    assert not ckpt.exists()  # a finished run clears its checkpoints
    a, b = _weights(tmp_path / "whole"), _weights(tmp_path / "killed")
    assert a.keys() == b.keys() and a
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=0, msg=key)


def test_dev_selection_keeps_the_best_checkpoint(pairs, mirror):
    dev = load_sts("STSBenchmark", [mirror], split="dev")
    seen: list[dict[str, float]] = []
    student = build_student("static", MINILM)
    # pairs of unrelated sentences: training hurts, so the best model is not the last one
    noisy = pairs.with_columns(
        pl.col("positive").shuffle(seed=1), pl.col("hard_negative").shuffle(seed=2)
    )
    result = train(
        student,
        noisy,
        _batches(noisy, 16, 4),
        TrainConfig(lr=0.05, warmup_ratio=0.0, eval_every=4),
        on_step=lambda s, m: seen.append(m),
        score_dev=dev_scorer([mirror]),
    )
    scores = [m["dev_spearman"] for m in seen if "dev_spearman" in m]
    assert len(scores) == 6 and result.dev_spearman == max(scores)
    assert result.dev_step == 4 * (1 + int(np.argmax(scores)))
    assert scores[-1] < max(scores)  # so keeping the best mattered
    again = float(evaluate_sts(result.model, [dev], progress=False)["value"][0])
    assert again == pytest.approx(result.dev_spearman, abs=1e-6)


def test_transformer_student_with_simcse_pooling_exports_without_its_head(
    tiny_bert, pairs, tmp_path
):
    student = build_student("transformer", str(tiny_bert), pooling="cls_mlp", max_length=32)
    head = train_head(student, "cls_mlp")
    before = [p.detach().clone() for p in head.parameters()]
    seen: list[dict[str, float]] = []
    config = TrainConfig(lr=1e-3, temperature=0.05, symmetric=True, chunk_size=16)
    result = train(
        student, pairs, _batches(pairs, 16, 2), config, lambda s, m: seen.append(m), head
    )
    assert any(not torch.equal(a, b) for a, b in zip(before, head.parameters(), strict=True))
    assert all(np.isfinite(m["loss"]) and m["tokens_per_s"] > 0 for m in seen)
    result.model.save(str(tmp_path / "student"))
    loaded = SentenceTransformer(str(tmp_path / "student"), device="cpu")
    assert len(loaded) == 2  # Transformer + CLS pooling: the MLP stayed behind
    texts = pairs["anchor"].to_list()[:12]
    np.testing.assert_allclose(
        encode(result.model, texts), loaded.encode(texts, normalize_embeddings=True), atol=1e-5
    )


def test_unlabeled_rows_train_a_dropout_student_and_warn_for_a_static_one(tiny_bert, pairs, caplog):
    unlabeled = pairs.with_columns(pl.lit(None, pl.String).alias("positive"))
    batches = _batches(unlabeled, 16, 1)
    student = build_student("transformer", str(tiny_bert), pooling="cls", max_length=32)
    seen: list[dict[str, float]] = []
    with caplog.at_level("WARNING"):
        train(student, unlabeled, batches, TrainConfig(lr=1e-3), lambda s, m: seen.append(m))
    assert "no dropout" not in caplog.text
    # the anchor and its copy differ under dropout, so the loss is above its floor and trains
    assert all(np.isfinite(m["loss"]) and m["grad_norm"] > 0 for m in seen)
    with caplog.at_level("WARNING"):
        train(build_student("static", MINILM), unlabeled, batches, TrainConfig())
    assert "no dropout" in caplog.text


class Killed(Exception):
    """Stands for a kill a few steps after a checkpoint."""


def _train_until(student, pairs, batches, ckpt, kill_at: int | None = None, **config):
    def on_step(step: int, metrics: dict) -> None:
        if kill_at is not None and step + 1 == kill_at:
            raise Killed

    settings = TrainConfig(checkpoint_every=5, **({"lr": 0.05} | config))
    return train(student, pairs, batches, settings, on_step=on_step, checkpoint_dir=ckpt)


def test_changed_settings_twice_set_checkpoints_aside_and_training_goes_on(pairs, tmp_path):
    """The second stale checkpoint of one step used to crash every rerun (Directory not empty)."""
    batches, ckpt = _batches(pairs, 16, 3), tmp_path / "ck"
    for lr in (0.05, 0.02):
        with pytest.raises(Killed):
            _train_until(build_student("static", MINILM), pairs, batches, ckpt, 7, lr=lr)
    assert (ckpt / "step-000005.stale").exists() and (ckpt / "step-000005").exists()
    done = _train_until(build_student("static", MINILM), pairs, batches, ckpt, lr=0.01)
    assert done.resumed_from == 0 and done.steps == 18
    assert sorted(p.name for p in ckpt.iterdir()) == ["step-000005.stale", "step-000015"]


@pytest.mark.parametrize(
    "other",
    [
        {"static_init": "random", "dim": 64},
        {"static_init": "teacher"},
        {"static_init": "random", "dim": 32, "seed": 1},
    ],
)
def test_a_checkpoint_of_another_student_is_not_resumed(pairs, tmp_path, other):
    """Killed with one student, rerun with another: the rerun is a clean run of the second."""
    batches, ckpt = _batches(pairs, 16, 3), tmp_path / "ck"
    first = {"static_init": "random", "dim": 32}
    with pytest.raises(Killed):
        _train_until(build_student("static", MINILM, **first), pairs, batches, ckpt, 7)
    rerun = _train_until(build_student("static", MINILM, **other), pairs, batches, ckpt)
    clean = _train_until(build_student("static", MINILM, **other), pairs, batches, None)
    assert rerun.resumed_from == 0
    a, b = rerun.model.state_dict(), clean.model.state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def test_checkpoints_reach_the_disk_before_they_are_renamed(pairs, tmp_path, monkeypatch):
    """fsync of every file of a checkpoint and of its folder: a rename alone can leave an empty
    state.pt after a power cut."""
    synced: list[str] = []
    real = os.fsync

    def record(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", record)
    ckpt = tmp_path / "ck"
    with pytest.raises(Killed):
        _train_until(build_student("static", MINILM), pairs, _batches(pairs, 16, 1), ckpt, 6)
    written = ckpt / ".step-000005.tmp"
    assert {str(written / "state.pt"), str(written / "rng-0.pt"), str(ckpt)} <= set(synced)


def _bad_batches(pairs: pl.DataFrame, fault: str) -> tuple[pl.DataFrame, str]:
    batches = _batches(pairs, 16, 1)
    first = pl.int_range(pl.len()) == 0
    if fault == "smaller":  # every batch 8 rows where the grid says 16
        return _batches(pairs, 8, 1), "has 8 rows, but the batch size is 16"
    if fault == "own":
        own = batches.with_columns(
            pl.when(first)
            .then(pl.concat_list("id"))
            .otherwise("hard_negative_ids")
            .alias("hard_negative_ids")
        )
        return own, "epoch 0, batch 0, position 0 (id '{}'): its own id as hard negative"
    if fault == "unknown":
        unknown = batches.with_columns(
            pl.when(first)
            .then(pl.lit(["ghost"]))
            .otherwise("hard_negative_ids")
            .alias("hard_negative_ids")
        )
        return unknown, "position 0 (id '{}'): hard negative 'ghost' is no pair's id"
    # one oversized batch among batches of 16: the schema names the odd one, not the others
    extra = batches.filter(pl.col("batch") == 1).head(1)
    extra = extra.with_columns(pl.lit(0).alias("batch"), pl.lit(99).alias("position"))
    extra = extra.cast(batches.schema)
    return pl.concat([batches.filter(pl.col("batch") != 1), extra]), "batches differ"


@pytest.mark.parametrize("fault", ["smaller", "own", "unknown", "oversized"])
def test_a_batch_file_that_no_miner_wrote_is_refused_naming_the_row(pairs, tmp_path, capsys, fault):
    from embedlab import schemas
    from embedlab.cli import main

    batches, expected = _bad_batches(pairs, fault)
    first_id = batches.sort("epoch", "batch", "position")["id"][0]
    pairs.write_parquet(tmp_path / "pairs.parquet")
    batches.write_parquet(tmp_path / "b.parquet")  # as written elsewhere: no schema check
    out = tmp_path / "model"
    args = ["train", "--pairs", str(tmp_path / "pairs.parquet"), "--batches"]
    args += [str(tmp_path / "b.parquet"), "--out", str(out), "--batch-size", "16"]
    assert main([*args, "--init", MINILM, "--eval-every", "0"]) == 1
    err = capsys.readouterr().err
    assert str(tmp_path / "b.parquet") in err and expected.format(first_id) in err, err
    assert not out.exists()
    if fault == "oversized":
        with pytest.raises(schemas.DataError) as refused:
            schemas.read(tmp_path / "b.parquet", schemas.Batches)
        message = str(refused.value)  # the odd batch's 17 rows, not the others
        assert (
            "(17 failure(s))" in message and '"batch":0' in message and '"batch":2' not in message
        )
