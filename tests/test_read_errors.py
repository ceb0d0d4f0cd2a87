"""Files that cannot be read stop with one line naming the file (and the line, where it can be
found), not a raw polars or decode traceback; damaged cache entries are recomputed."""

import numpy as np
import polars as pl
import pytest

from embedlab import schemas
from embedlab.corpus.build import Source, read_source
from embedlab.datafiles import read_table

from .conftest import make_pairs

CORPUS = {  # file name -> (bytes, what the error must say after the file name)
    "latin1.txt": (b"A first sentence.\nCaf\xe9 au lait.\n", r", line 2: not UTF-8"),
    "latin1.csv": (b"text\nA first sentence.\nCaf\xe9 au lait.\n", r", line 3: not UTF-8"),
    "ragged.csv": (b"text,n\nA b c.,1\nD e f.,2,3\n", r", line 3: 3 fields where the header has 2"),
}
IMPORT = {
    "extra.csv": (b"sent0,sent1,hard_neg\na,b,c\nd,e,f,g\n", r", line 3: 4 fields where"),
    "quote.csv": (
        b'sent0,sent1,hard_neg\na,b,c\n"d,e,f\ng,h,i\n',
        r", from line 3: unexpected end",
    ),
    "bad.jsonl": (b'{"premise": "a"}\n{"premise": \n', r", line 2: not JSON"),
}


@pytest.mark.parametrize("name", list(CORPUS))
def test_unreadable_corpus_files_are_named_with_their_line(tmp_path, name):
    data, expected = CORPUS[name]
    (tmp_path / name).write_bytes(data)
    with pytest.raises(schemas.DataError, match=rf"{name}{expected}.*cannot be read as"):
        read_source(Source(str(tmp_path / name)))


@pytest.mark.parametrize("name", list(IMPORT))
def test_unreadable_import_files_are_named_with_their_line(tmp_path, name):
    data, expected = IMPORT[name]
    (tmp_path / name).write_bytes(data)
    with pytest.raises(schemas.DataError, match=rf"{name}{expected}"):
        read_table(str(tmp_path / name))


@pytest.mark.parametrize("damage", ["truncated", "empty", "corrupted"])
def test_damaged_parquet_between_stages_is_named(tmp_path, damage):
    path = tmp_path / "pairs.parquet"
    schemas.write(make_pairs(20), path, schemas.Pairs)
    data = path.read_bytes()
    path.write_bytes(
        {
            "truncated": data[: len(data) // 2],
            "empty": b"",
            "corrupted": data[:40] + b"\0" * 200 + data[240:],
        }[damage]
    )
    with pytest.raises(schemas.DataError, match=r"pairs\.parquet: cannot be read as a Pairs table"):
        schemas.read(path, schemas.Pairs)


def test_a_damaged_teacher_cache_entry_is_recomputed(tmp_path, minilm):
    from embedlab.teacher.embed import embed_pairs

    pairs, cache = make_pairs(12), tmp_path / "cache"
    first, _, _ = embed_pairs(minilm, pairs, cache_dir=cache, identity="m@1")
    [entry] = cache.glob("m-*.npy")
    entry.write_bytes(entry.read_bytes()[:100])  # cut by a full disk
    again, _, hit = embed_pairs(minilm, pairs, cache_dir=cache, identity="m@1")
    assert not hit and np.array_equal(first, again)
    assert np.array_equal(np.load(entry), first)  # the entry is whole again
    assert embed_pairs(minilm, pairs, cache_dir=cache, identity="m@1")[2]
    np.save(entry, np.where(np.arange(len(first))[:, None] == 3, np.nan, first))  # a NaN row
    again, _, hit = embed_pairs(minilm, pairs, cache_dir=cache, identity="m@1")
    assert not hit and np.array_equal(first, again)
    changed = first.copy()
    changed[5, 7] += 0.25  # a finite value changed: only the checksum written with it tells
    np.save(entry, changed)
    again, _, hit = embed_pairs(minilm, pairs, cache_dir=cache, identity="m@1")
    assert not hit and np.array_equal(first, again)
    assert embed_pairs(minilm, pairs, cache_dir=cache, identity="m@1")[2]


def test_a_full_disk_during_a_checkpoint_or_a_shard_names_the_folder_and_the_resume(
    tmp_path, monkeypatch
):
    """torch said "[enforce fail at inline_container.cc:672]" and polars "No space left on
    device": a traceback either way. Now one line: which folder, what, and that a rerun
    resumes; the checkpoints and shards already written stay."""
    import polars as pl
    import torch

    from embedlab import errors
    from embedlab.errors import DiskFull
    from embedlab.synth.shards import ShardStore
    from embedlab.train import checkpoint

    def torch_full(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", torch_full)
    usage = errors.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(errors.shutil, "disk_usage", lambda p: usage._replace(free=4096))
    with pytest.raises(DiskFull) as full:
        checkpoint.save(tmp_path / "ckpt", 40, {"model": {}})
    assert str(full.value).startswith(f"{tmp_path / 'ckpt'}: no space left")
    assert "checkpoint 40" in str(full.value) and "resumes from the last whole" in str(full.value)

    store = ShardStore(tmp_path / "shards", "f1")
    store.write((1, 0), pl.DataFrame({"a": [1]}))  # attempt 1, chunk 0

    def polars_full(self, path, *args, **kwargs):
        raise pl.exceptions.ComputeError("failed to write: No space left on device (os error 28)")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", polars_full)
    with pytest.raises(DiskFull, match=r"shards: no space left .* shard part-1-000001.parquet"):
        store.write((1, 1), pl.DataFrame({"a": [2]}))
    assert list(store.done) == [(1, 0)]  # the shard written before is still recorded

    monkeypatch.setattr(errors.shutil, "disk_usage", lambda p: usage)  # space enough
    monkeypatch.setattr(torch, "save", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("bug")))
    with pytest.raises(RuntimeError, match="bug"):  # any other failure keeps its traceback
        checkpoint.save(tmp_path / "ckpt2", 1, {})


def test_a_changed_or_non_finite_teacher_matrix_is_refused(tmp_path):
    """A NaN row in the teacher matrix was mined with exit 0. The ids table carries the
    matrix's sha256, checked when the matrix is loaded; non-finite rows are refused."""
    from embedlab.embeddings import TeacherView, save

    pairs = make_pairs(6)
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((18, 4)).astype(np.float32)
    ids = pl.DataFrame(
        {
            "id": pairs["id"].to_list() * 3,
            "field": ["anchor"] * 6 + ["positive"] * 6 + ["hard_negative"] * 6,
            "row": np.arange(18, dtype=np.int64),
        }
    )
    out, ids_out = tmp_path / "t.npy", tmp_path / "t.ids.parquet"
    save(emb, ids, out, ids_out)
    assert TeacherView.load(out, ids_out, pairs).anchor.shape == (6, 4)
    changed = emb.copy()
    changed[3, 1] = np.nan
    np.save(out, changed)  # rewritten behind the ids table's back
    with pytest.raises(schemas.DataError, match=r"t\.npy: its bytes do not match the sha256"):
        TeacherView.load(out, ids_out, pairs)
    schemas.write(ids, ids_out, schemas.TeacherIds)  # an ids table without the checksum
    with pytest.raises(schemas.DataError, match=r"the anchor embedding of id .* is not finite"):
        TeacherView.load(out, ids_out, pairs)
    with pytest.raises(schemas.DataError, match="row 3 is not finite"):
        save(changed, ids, out, ids_out)


def test_a_split_that_an_sts_task_lacks_is_refused_not_ignored(mirror):
    from embedlab.errors import SettingError
    from embedlab.sts_data import load_sts

    with pytest.raises(SettingError, match="STS12 has only a test split, not 'dev'"):
        load_sts("STS12", [mirror], split="dev")
    assert load_sts("STSBenchmark", [mirror], split="dev").split == "dev"
