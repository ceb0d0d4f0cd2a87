import json

import mlflow
import numpy as np
import polars as pl

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


def test_mine_cli_writes_identical_bytes_for_the_same_seed(tmp_path):
    pairs = make_pairs(64)
    schemas.write(pairs, tmp_path / "pairs.parquet", schemas.Pairs)
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((3 * 64, 8)).astype(np.float32)  # anchors, positives, negatives
    np.save(tmp_path / "t.npy", emb / np.linalg.norm(emb, axis=1, keepdims=True))
    ids = pl.DataFrame(
        {
            "id": pairs["id"].to_list() * 3,
            "field": ["anchor"] * 64 + ["positive"] * 64 + ["hard_negative"] * 64,
            "row": np.arange(3 * 64, dtype=np.int64),
        }
    )
    schemas.write(ids, tmp_path / "t.ids.parquet", schemas.TeacherIds)
    outputs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.parquet"
        code = main(
            [
                "--tag",
                "miner=b3",
                "mine",
                "--miner",
                "b3",
                "--pairs",
                str(tmp_path / "pairs.parquet"),
                "--embeddings",
                str(tmp_path / "t.npy"),
                "--ids",
                str(tmp_path / "t.ids.parquet"),
                "--out",
                str(out),
                "--batch-size",
                "16",
                "--epochs",
                "2",
                "--seed",
                "4",
                "--options",
                json.dumps({"p": 1, "m": 6, "cluster_size": 4}),
                "--plot",
                str(tmp_path / f"{name}.png"),
            ]
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


def test_teacher_ids_must_cover_the_pairs(tmp_path):
    pairs = make_pairs(8)
    schemas.write(pairs, tmp_path / "pairs.parquet", schemas.Pairs)
    np.save(tmp_path / "t.npy", np.eye(8, dtype=np.float32))
    ids = pl.DataFrame(
        {"id": pairs["id"], "field": ["anchor"] * 8, "row": np.arange(8, dtype=np.int64)}
    )
    schemas.write(ids, tmp_path / "t.ids.parquet", schemas.TeacherIds)
    import pytest

    from embedlab.mine.teacher import TeacherView

    with pytest.raises(schemas.DataError, match="no teacher embedding of the positive of id"):
        TeacherView.load(tmp_path / "t.npy", tmp_path / "t.ids.parquet", pairs)


def test_teacher_embeddings_are_cached_by_content(tmp_path, minilm):
    from embedlab.mine.teacher import TeacherView, embed_pairs

    pairs = make_pairs(12)
    cache = tmp_path / "cache"
    first, ids, hit = embed_pairs(minilm, pairs, cache_dir=cache, model_name="m")
    assert not hit and len(list(cache.glob("m-*.npy"))) == 1
    again, _, hit = embed_pairs(minilm, pairs, cache_dir=cache, model_name="m")
    assert hit and np.array_equal(first, again)
    _, _, hit = embed_pairs(minilm, make_pairs(12, seed=1), cache_dir=cache, model_name="m")
    assert not hit  # other texts, other key
    np.save(tmp_path / "t.npy", first)
    schemas.write(ids, tmp_path / "t.ids.parquet", schemas.TeacherIds)
    view = TeacherView.load(tmp_path / "t.npy", tmp_path / "t.ids.parquet", pairs.reverse())
    np.testing.assert_allclose(view.anchor[0], first[11], atol=1e-6)  # joined by id
