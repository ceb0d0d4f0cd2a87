import json
from pathlib import Path

import mlflow
import numpy as np
import polars as pl
import pytest

from embedlab import schemas
from embedlab.cli import main
from embedlab.tracking import ensure_experiment

from .conftest import make_pairs


def _runs():
    return mlflow.search_runs([ensure_experiment()], output_format="list")


def test_bad_corpus_file_fails_cleanly_and_is_tracked_as_failed(tmp_path, capsys):
    bad = tmp_path / "user.txt"
    bad.write_text("one fine sentence\n \n")
    code = main(
        [
            "--rule",
            "corpus",
            "corpus",
            "--out",
            str(tmp_path / "c.parquet"),
            "--sources",
            json.dumps({"path": str(bad)}),
        ]
    )
    assert code == 1
    assert "user.txt: line 2 has an empty text" in capsys.readouterr().err
    assert not (tmp_path / "c.parquet").exists()
    (run,) = _runs()
    assert run.info.status == "FAILED" and run.data.tags["rule"] == "corpus"


def _mine_inputs(tmp_path: Path, n: int = 64) -> list[str]:
    """Pairs and teacher files of ``n`` random rows; the mine command's input arguments."""
    pairs = make_pairs(n)
    schemas.write(pairs, tmp_path / "pairs.parquet", schemas.Pairs)
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((3 * n, 8)).astype(np.float32)  # anchors, positives, negatives
    np.save(tmp_path / "t.npy", emb / np.linalg.norm(emb, axis=1, keepdims=True))
    ids = pl.DataFrame(
        {
            "id": pairs["id"].to_list() * 3,
            "field": ["anchor"] * n + ["positive"] * n + ["hard_negative"] * n,
            "row": np.arange(3 * n, dtype=np.int64),
        }
    )
    schemas.write(ids, tmp_path / "t.ids.parquet", schemas.TeacherIds)
    return [
        "--pairs",
        str(tmp_path / "pairs.parquet"),
        "--embeddings",
        str(tmp_path / "t.npy"),
        "--ids",
        str(tmp_path / "t.ids.parquet"),
    ]


def test_a_seeds_subsample_is_the_same_rows_for_every_miner_and_other_rows_per_seed(tmp_path):
    inputs = _mine_inputs(tmp_path, n=80)
    rows = {}
    for miner, seed in (("random", 0), ("b3", 0), ("random", 1)):
        out = tmp_path / f"{miner}-{seed}.parquet"
        args = ["mine", "--miner", miner, *inputs, "--batch-size", "8", "--epochs", "1"]
        args += ["--subsample", "0.5", "--seed", str(seed), "--out", str(out)]
        args += [
            "--options",
            json.dumps({"p": 1, "m": 6, "cluster_size": 4} if miner == "b3" else {}),
        ]
        assert main(args) == 0
        rows[miner, seed] = set(schemas.read(out, schemas.Batches)["id"])
    assert len(rows["random", 0]) == 40  # half of 80, every row of it in a batch of 8
    assert rows["b3", 0] <= rows["random", 0]  # b3 may leave a few out, never add others
    assert rows["random", 1] != rows["random", 0]


def test_mine_cli_writes_identical_bytes_for_the_same_seed(tmp_path):
    common = [
        "mine",
        "--miner",
        "b3",
        *_mine_inputs(tmp_path),
        "--batch-size",
        "16",
        "--epochs",
        "2",
        "--options",
        json.dumps({"p": 1, "m": 6, "cluster_size": 4}),
    ]
    outputs = []
    for name in ("a", "b"):
        out, plot = tmp_path / f"{name}.parquet", str(tmp_path / f"{name}.png")
        code = main(
            ["--tag", "miner=b3", *common, "--out", str(out), "--seed", "4", "--plot", plot]
        )
        assert code == 0
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    runs = _runs()
    assert len(runs) == 2 and runs[0].data.params["miner"] == "b3"
    metrics = runs[0].data.metrics
    assert metrics["batches_with_duplicate_text"] == 0
    assert 0 <= metrics["false_negative_rate"] <= 1
    assert {"in_batch_sim_mean", "random_in_batch_sim_mean", "in_batch_sim_p90"} <= set(metrics)
    assert (tmp_path / "a.png").exists()
    logged = [a.path for a in mlflow.MlflowClient().list_artifacts(runs[0].info.run_id)]
    assert "in_batch_similarity.json" in logged  # both histograms, one table

    # several seeds in one process: the same bytes per seed as one process each, one run each
    outs = [str(tmp_path / f"s{k}.parquet") for k in (4, 5)]
    plots = [str(tmp_path / f"s{k}.png") for k in (4, 5)]
    code = main(
        ["--tag", "miner=b3", *common, "--out", *outs, "--seed", "4", "5", "--plot", *plots]
    )
    assert code == 0
    assert Path(outs[0]).read_bytes() == outputs[0] != Path(outs[1]).read_bytes()
    seeds = sorted(r.data.tags.get("wildcard.seed") for r in _runs()[:2])
    assert seeds == ["4", "5"]
    with pytest.raises(SystemExit, match="one value per seed"):
        main([*common, "--out", *outs, "--seed", "4"])


def test_teacher_ids_must_cover_the_pairs(tmp_path):
    pairs = make_pairs(8)
    schemas.write(pairs, tmp_path / "pairs.parquet", schemas.Pairs)
    np.save(tmp_path / "t.npy", np.eye(8, dtype=np.float32))
    ids = pl.DataFrame(
        {"id": pairs["id"], "field": ["anchor"] * 8, "row": np.arange(8, dtype=np.int64)}
    )
    schemas.write(ids, tmp_path / "t.ids.parquet", schemas.TeacherIds)
    import pytest

    from embedlab.embeddings import TeacherView

    with pytest.raises(schemas.DataError, match="no teacher embedding of the positive of id"):
        TeacherView.load(tmp_path / "t.npy", tmp_path / "t.ids.parquet", pairs)


def test_teacher_embeddings_are_cached_by_content(tmp_path, minilm):
    from embedlab.embeddings import TeacherView
    from embedlab.teacher.embed import embed_pairs

    pairs = make_pairs(12)
    cache = tmp_path / "cache"
    first, ids, hit = embed_pairs(minilm, pairs, cache_dir=cache, identity="m@1")
    assert not hit and len(list(cache.glob("m-*.npy"))) == 1
    again, _, hit = embed_pairs(minilm, pairs, cache_dir=cache, identity="m@1")
    assert hit and np.array_equal(first, again)
    _, _, hit = embed_pairs(minilm, make_pairs(12, seed=1), cache_dir=cache, identity="m@1")
    assert not hit  # other texts, other key
    np.save(tmp_path / "t.npy", first)
    schemas.write(ids, tmp_path / "t.ids.parquet", schemas.TeacherIds)
    view = TeacherView.load(tmp_path / "t.npy", tmp_path / "t.ids.parquet", pairs.reverse())
    np.testing.assert_allclose(view.anchor[0], first[11], atol=1e-6)  # joined by id


def test_the_teacher_cache_misses_for_another_copy_of_the_model_or_other_code(
    tmp_path, minilm, monkeypatch
):
    """The key is what decides the bits (the B3 page once reused a matrix that older encoding
    code had computed, because the key was the model's name and the texts)."""
    from embedlab import provenance
    from embedlab.cache import folder_hash
    from embedlab.resolve import model_identity, resolve_model
    from embedlab.teacher.embed import cache_key, embed_pairs

    name = "sentence-transformers/all-MiniLM-L6-v2"
    pairs, cache = make_pairs(8), tmp_path / "cache"
    identity = model_identity(name)
    embed_pairs(minilm, pairs, 16, cache, identity)
    assert embed_pairs(minilm, pairs, 16, cache, identity)[2]  # same everything: a hit
    assert not embed_pairs(minilm, pairs, 8, cache, identity)[2]  # another batch size
    # another copy under the same name: a changed weight file, another identity, a miss
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(resolve_model(name).path, copy)
    assert model_identity(str(copy)).split("@")[1] == identity.split("@")[1]  # same bytes
    (copy / "config.json").write_text((copy / "config.json").read_text() + " ")
    assert folder_hash(copy) != identity.split("@")[1]
    assert not embed_pairs(minilm, pairs, 16, cache, f"{name}@{folder_hash(copy)}")[2]
    # changed teacher code (the stage's code version), same model and texts: a miss
    real = provenance.stage_code_version("teacher")
    monkeypatch.setattr(provenance, "stage_code_version", lambda stage: real + "-changed")
    texts = [t for f in ("anchor", "positive", "hard_negative") for t in pairs[f]]
    assert cache_key(identity, texts, 16, "cpu") != cache_key(identity, texts, 8, "cpu")
    assert not embed_pairs(minilm, pairs, 16, cache, identity)[2]


def test_a_stage_command_imports_only_that_stage():
    """A mine job must not pay for sentence-transformers' import (seconds, hundreds of jobs)."""
    import subprocess
    import sys

    code = (
        "import sys; from embedlab.cli import _stage_named, parser; "
        "assert _stage_named(['--rule', 'evaluate', '--tag', 'a=b', 'mine', '--seed', '1']) "
        "== 'mine'; parser(['mine']); print(sorted({'sentence_transformers', 'torch'} & "
        "set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
