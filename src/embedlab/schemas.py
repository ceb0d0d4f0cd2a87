"""Pandera polars schemas of every artefact that crosses a stage boundary.

``read(path, Model)`` and ``write(df, path, Model)`` validate eagerly (a LazyFrame check skips
the data) and turn pandera's report into an error that names the file, the row and the column.
"""

import csv
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandera.polars as pa
import polars as pl

from embedlab import provenance
from embedlab.atomic import atomic_write
from embedlab.errors import EmbedlabError, NotFound
from embedlab.resolve import is_remote


class DataError(EmbedlabError, ValueError):
    """Bad data in a file: the message names the file, the row and the column."""


class Corpus(pa.DataFrameModel):
    id: str = pa.Field(unique=True)
    text: str = pa.Field(str_length={"min_value": 1})
    source: str

    class Config:
        strict = True


MODES = ["partial", "scratch", "query", "imported", "unlabeled"]


class Pairs(pa.DataFrameModel):
    """One training row. A null positive marks an unlabeled row (unsupervised SimCSE: the anchor
    is its own positive under dropout noise); a null hard negative, a row without one. The
    optional ``score`` (e.g. a 0-5 AI-feedback similarity) can weigh the row's loss; the optional
    ``teacher_positive`` / ``teacher_negative`` are the teacher's cosine of the anchor with each."""

    id: str = pa.Field(unique=True)
    anchor: str = pa.Field(str_length={"min_value": 1})
    positive: str = pa.Field(str_length={"min_value": 1}, nullable=True)
    hard_negative: str = pa.Field(str_length={"min_value": 1}, nullable=True)
    mode: str = pa.Field(isin=MODES)
    generator: str
    prompt_id: str
    copy_similarity: float = pa.Field(ge=0.0, le=1.0)
    score: float | None = pa.Field(ge=0.0, nullable=True)
    teacher_positive: float | None = pa.Field(nullable=True)
    teacher_negative: float | None = pa.Field(nullable=True)

    class Config:
        strict = True


class Rejected(pa.DataFrameModel):
    """A generated row's failed attempt: ``reason`` says which filter refused it, ``raw`` what
    the LLM said. A row asked several times has one line per failed attempt."""

    id: str
    anchor: str
    positive: str = pa.Field(nullable=True)
    hard_negative: str = pa.Field(nullable=True)
    mode: str
    generator: str
    prompt_id: str
    raw: str
    reason: str
    teacher_positive: float | None = pa.Field(nullable=True)
    teacher_negative: float | None = pa.Field(nullable=True)
    attempt: int = pa.Field(ge=1)  # the ask that failed (a row asked again fails once per ask)

    class Config:
        strict = True


class TeacherIds(pa.DataFrameModel):
    id: str
    field: str = pa.Field(isin=["anchor", "positive", "hard_negative"])
    row: int = pa.Field(ge=0, unique=True)

    class Config:
        strict = True
        unique = ["id", "field"]


class Batches(pa.DataFrameModel):
    """One row per (epoch, batch, position); a batch holds distinct ids, and every batch of the
    file has one size (the miners drop an incomplete last batch)."""

    epoch: int = pa.Field(ge=0)
    batch: int = pa.Field(ge=0)
    position: int = pa.Field(ge=0)
    id: str
    hard_negative_ids: list[str]

    class Config:
        strict = True
        unique = ["epoch", "batch", "position"]

    @pa.dataframe_check(error="an id occurs twice in one batch")
    def distinct_ids_in_a_batch(cls, data) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("id").is_unique().over("epoch", "batch"))

    @pa.dataframe_check(
        error="batches differ in size: the rows shown are in batches of another size than most"
    )
    def one_batch_size(cls, data) -> pl.LazyFrame:
        size = pl.len().over("epoch", "batch")
        return data.lazyframe.select(size == size.mode().min())


class Scores(pa.DataFrameModel):
    task: str
    split: str
    metric: str
    value: float
    n: int = pa.Field(ge=0)

    class Config:
        strict = True


def polars_schema(model: type[pa.DataFrameModel]) -> dict[str, pl.DataType]:
    """The polars dtypes of ``model``'s columns, to build a frame that the model accepts.

    >>> polars_schema(Scores)["value"]
    Float64
    """
    return {name: column.dtype.type for name, column in model.to_schema().columns.items()}


def validate(df: pl.DataFrame, model: type[pa.DataFrameModel], where: str | Path) -> pl.DataFrame:
    """Validate ``df`` against ``model``; on failure raise DataError naming file, row and column."""
    try:
        return model.validate(df, lazy=True)
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases.head(5).to_dicts()
        lines = [
            f"  row {c.get('index')}, column {c.get('column')!r}: check {c.get('check')} failed"
            f" (value {c.get('failure_case')!r})"
            for c in cases
        ]
        raise DataError(
            f"{where}: does not match the {model.__name__} schema "
            f"({len(err.failure_cases)} failure(s)):\n" + "\n".join(lines)
        ) from None


def _first_bad_line(path: str | Path) -> str:
    """Where in a local text file reading went wrong ("", if it cannot be found)."""
    path = Path(str(path))
    if is_remote(path) or not path.is_file() or path.suffix == ".parquet":
        return ""
    data = path.read_bytes()
    for number, line in enumerate(data.splitlines(), 1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as err:
            return f", line {number}: not UTF-8 ({err.reason} at byte {err.start})"
    text = data.decode("utf-8")
    if path.suffix in (".jsonl", ".json"):
        for number, line in enumerate(text.splitlines(), 1):
            try:
                if line.strip():
                    json.loads(line)
            except json.JSONDecodeError as err:
                return f", line {number}: not JSON ({err.msg})"
    if path.suffix in (".csv", ".tsv"):
        sep = "\t" if path.suffix == ".tsv" else ","
        reader = csv.reader(io.StringIO(text), delimiter=sep, strict=True)
        header, start = None, 1
        try:
            for row in reader:
                if header is None:
                    header = row
                elif row and len(row) != len(header):
                    return f", line {start}: {len(row)} fields where the header has {len(header)}"
                start = reader.line_num + 1
        except csv.Error as err:
            return f", from line {start}: {err}"
    return ""


@contextmanager
def reading(path: str | Path, what: str) -> Iterator[None]:
    """Turn a failed read (bad encoding, a ragged or unclosed CSV, bad JSON, a truncated,
    empty or damaged Parquet file) into one ``DataError`` that names the file and, where it
    can be found, the line.

    Example::

        with reading(path, "a corpus CSV"):
            frame = pl.read_csv(path)
    """
    try:
        yield
    except DataError:
        raise
    except (
        pl.exceptions.PolarsError,
        UnicodeDecodeError,
        json.JSONDecodeError,
        OSError,  # pyarrow: a page whose checksum fails, a truncated file
        ValueError,  # pyarrow.ArrowInvalid
    ) as err:
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(
            f"{path}{_first_bad_line(path)}: cannot be read as {what} ({detail})"
        ) from None


def read(path: str | Path, model: type[pa.DataFrameModel]) -> pl.DataFrame:
    """Read a Parquet artefact and validate it."""
    path = Path(path)
    if not path.exists():
        raise NotFound(f"{path}: no such file (expected a {model.__name__} table)")
    with reading(path, f"a {model.__name__} table; delete it so that its stage writes it again"):
        # the page checksums written with it (write) are checked: changed bytes are an error
        frame = pl.read_parquet(path, use_pyarrow=True, pyarrow_options=VERIFY)
    frame = validate(frame, model, path)
    provenance.TRACKER.add(provenance.read_parquet_lineage(path))  # what made it, carried on
    return frame


VERIFY = {"page_checksum_verification": True}  # pyarrow's read option


def write(
    df: pl.DataFrame,
    path: str | Path,
    model: type[pa.DataFrameModel],
    metadata: dict[str, str] | None = None,
) -> Path:
    """Validate, then write atomically (tmp file + rename) so a killed stage leaves no half
    file. Every data page carries a CRC checksum, checked by :func:`read`, and the file the
    lineage of the stage writing it (``embedlab.provenance``) and any other ``metadata``."""
    import pyarrow.parquet as pq

    path = Path(path)
    df = validate(df, model, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = df.to_arrow()
    stamp = {**(table.schema.metadata or {}), **provenance.parquet_metadata(), **(metadata or {})}
    table = table.replace_schema_metadata(stamp)
    return atomic_write(path, lambda tmp: pq.write_table(table, tmp, write_page_checksum=True))
