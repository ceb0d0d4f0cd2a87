import polars as pl
import pytest

from embedlab import schemas


def test_write_then_read_roundtrip(tmp_path):
    df = pl.DataFrame({"id": ["a", "b"], "text": ["x", "y"], "source": ["s", "s"]})
    path = schemas.write(df, tmp_path / "c.parquet", schemas.Corpus)
    assert schemas.read(path, schemas.Corpus).equals(df)
    assert not (tmp_path / "c.parquet.tmp").exists()


def test_error_names_file_row_and_column(tmp_path):
    path = tmp_path / "corpus.parquet"
    pl.DataFrame(
        {"id": ["a", "b", "c"], "text": ["x", "", "z"], "source": ["s"] * 3}
    ).write_parquet(path)
    with pytest.raises(schemas.DataError) as err:
        schemas.read(path, schemas.Corpus)
    message = str(err.value)
    assert "corpus.parquet" in message and "row 1" in message and "'text'" in message


def test_unexpected_column_is_refused(tmp_path):
    df = pl.DataFrame({"id": ["a"], "text": ["x"], "source": ["s"], "extra": [1]})
    with pytest.raises(schemas.DataError, match="extra"):
        schemas.write(df, tmp_path / "c.parquet", schemas.Corpus)
    assert not (tmp_path / "c.parquet").exists()


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.parquet"):
        schemas.read(tmp_path / "nothere.parquet", schemas.Pairs)


def batches(ids_per_batch: list[list[str]]) -> pl.DataFrame:
    rows = [
        {"epoch": 0, "batch": b, "position": p, "id": i, "hard_negative_ids": []}
        for b, ids in enumerate(ids_per_batch)
        for p, i in enumerate(ids)
    ]
    return pl.DataFrame(rows, schema=schemas.polars_schema(schemas.Batches))


def test_damaged_batch_files_are_refused(tmp_path):
    """An id twice in one batch, or a short batch, used to be trained on."""
    schemas.write(batches([["a", "b"], ["a", "c"]]), tmp_path / "ok.parquet", schemas.Batches)
    with pytest.raises(schemas.DataError, match=r"row 2, .*an id occurs twice in one batch"):
        schemas.write(batches([["a", "b"], ["c", "c"]]), tmp_path / "x.parquet", schemas.Batches)
    with pytest.raises(schemas.DataError, match=r"row 4, .*batches differ in size"):
        schemas.write(
            batches([["a", "b"], ["c", "d"], ["e"]]), tmp_path / "x.parquet", schemas.Batches
        )
    moved = batches([["a", "b"], ["c", "d"]]).with_columns(position=pl.lit(0))
    with pytest.raises(schemas.DataError, match="x.parquet"):
        schemas.write(moved, tmp_path / "x.parquet", schemas.Batches)


def test_bytes_changed_inside_a_stage_output_are_a_named_error(tmp_path):
    """Overwritten bytes inside pairs.parquet (13 ids changed) were read with exit 0: every data
    page carries a CRC checksum, checked on read."""
    import pyarrow.parquet as pq

    from .conftest import make_pairs

    path = tmp_path / "pairs.parquet"
    schemas.write(make_pairs(200), path, schemas.Pairs)
    column = pq.ParquetFile(path).metadata.row_group(0).column(0)  # the ids
    start = column.dictionary_page_offset or column.data_page_offset
    data = bytearray(path.read_bytes())
    data[start + column.total_compressed_size // 2] ^= 0x55
    path.write_bytes(bytes(data))
    with pytest.raises(schemas.DataError) as damaged:
        schemas.read(path, schemas.Pairs)
    message = str(damaged.value)
    assert (
        message.startswith(str(path)) and "delete it so that its stage writes it again" in message
    )
