"""Read sentence sources (txt, csv, tsv, parquet, STS-B / SICK files), check them, deduplicate.

Example::

    corpus, counts = build_corpus([Source("corpus/wordnet-examples.txt")],
                                  mirrors=["../shared/data"], max_sentences=100)
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from embedlab.ids import stable_id
from embedlab.resolve import is_remote, resolve_file, split_revision
from embedlab.schemas import DataError, Pairs, polars_schema, reading
from embedlab.settings.corpus import CorpusSettings
from embedlab.text import squash


@dataclass(frozen=True)
class Source:
    """One input of the corpus.

    path: a file, absolute or relative to a mirror, a remote file (``hf://datasets/<id>/<file>``,
    read through fsspec), or with format ``hf`` a dataset that
    ``datasets.load_dataset`` reads (a hub id, or a local dataset folder);
    format: txt (one sentence a line), csv, tsv, parquet, stsb (STS-B's tab-separated layout,
    both sentences), sick (SICK, both sentences), snli (the premises of an SNLI file that have
    both an entailment and a contradiction, the anchors of SimCSE's supervised triplets) or hf;
    column: the text column of
    csv/tsv/parquet/hf; split: the split of an hf dataset; name: the ``source`` value
    (default: the file stem).
    """

    path: str
    format: str = "auto"
    column: str = "text"
    split: str = "train"
    name: str | None = None


def _format(source: Source, path: Path) -> str:
    if source.format != "auto":
        return source.format
    suffix = path.suffix.lower().lstrip(".")
    if suffix in ("txt", "csv", "tsv", "parquet"):
        return suffix
    raise DataError(
        f"{path}: cannot tell the format from the suffix; set format: txt|csv|tsv|parquet"
    )


def _check_texts(texts: list[str | None], path: Path, first_row: int, what: str) -> None:
    for i, text in enumerate(texts):
        if text is None or not str(text).strip():
            kind = "a null" if text is None else "an empty"
            raise DataError(f"{path}: {what} {i + first_row} has {kind} text")


def read_source(source: Source, mirrors: Sequence[str | Path] = ()) -> pl.DataFrame:
    """Read one source into columns ``text``, ``source``; stop on an empty or null text."""
    if source.format == "hf":
        return _read_hf(source, mirrors)
    # a remote file (hf://datasets/..., s3://...) is read as it is, through fsspec or polars
    where = source.path if is_remote(source.path) else str(resolve_file(source.path, mirrors))
    path = Path(where)  # for the suffix, the stem and messages
    fmt = _format(source, path)
    if fmt == "snli":
        from embedlab.datafiles import read_table, snli_triplets

        triplets, _ = snli_triplets(read_table(where), where)
        name = source.name or path.stem
        complete = triplets["positive"].is_not_null() & triplets["negative"].is_not_null()
        return pl.DataFrame(  # `complete`: build_corpus drops (and counts) the other premises
            {"text": triplets["anchor"], "source": [name] * triplets.height, "complete": complete}
        )
    if fmt == "txt":
        import fsspec

        with reading(where, "a text file, one sentence per line"):
            with fsspec.open(where, "r", encoding="utf-8") as f:
                texts: list[str | None] = f.read().splitlines()
        _check_texts(texts, path, 1, "line")
    elif fmt in ("stsb", "sick"):
        from embedlab.sts_data import read_pair_file

        s1, s2, _ = read_pair_file(path, fmt)
        texts = [t for pair in zip(s1, s2, strict=True) for t in pair]
        _check_texts(texts, path, 1, "sentence")
    else:
        with reading(where, f"a corpus {fmt.upper()} file"):
            if fmt == "parquet":
                frame = pl.read_parquet(where)
            else:
                sep = "\t" if fmt == "tsv" else ","
                frame = pl.read_csv(where, separator=sep, quote_char='"')
        if source.column not in frame.columns:
            raise DataError(f"{path}: no column {source.column!r}; columns are {frame.columns}")
        texts = frame[source.column].cast(pl.String).to_list()
        _check_texts(texts, path, 1, "row")  # 1-based data rows, header not counted
    name = source.name or path.stem
    clean = [squash(str(t)) for t in texts]
    return pl.DataFrame({"text": clean, "source": [name] * len(clean)})


def _read_hf(source: Source, mirrors: Sequence[str | Path]) -> pl.DataFrame:
    """A dataset read with ``datasets``: a local dataset folder (or mirror copy), else the hub."""
    import datasets

    revision = None
    try:
        where = str(resolve_file(source.path, mirrors))
    except FileNotFoundError:
        where, revision = split_revision(source.path)  # a hub id, maybe with @revision
    data = datasets.load_dataset(where, split=source.split, revision=revision)
    if source.column not in data.column_names:
        raise DataError(f"{where}: no column {source.column!r}; columns are {data.column_names}")
    texts = data[source.column]
    _check_texts(texts, Path(where), 1, f"{source.split} row")
    clean = [squash(str(t)) for t in texts]
    name = source.name or Path(source.path).name
    return pl.DataFrame({"text": clean, "source": [name] * len(clean)})


def build_corpus(
    sources: Sequence[Source],
    mirrors: Sequence[str | Path] = (),
    max_sentences: int | None = None,
    min_chars: int = CorpusSettings.min_chars,
    max_chars: int = CorpusSettings.max_chars,
    seed: int = 0,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Concatenate sources, drop too short/long texts, deduplicate by text, sample, add ids.

    Returns the corpus (``id``, ``text``, ``source``) and counts of what was dropped and why.
    """
    frames = [read_source(s, mirrors) for s in sources]
    for i, (source, frame) in enumerate(zip(sources, frames, strict=True)):
        if frame.height == 0:
            raise DataError(
                f"corpus.sources[{i}] ({source.path}): no text was read from it (an empty file,"
                " or a column or format that finds none)"
            )
    names = [f["source"][0] for f in frames]  # what each reader named its rows
    counts = {"read": sum(f.height for f in frames)}
    if any("complete" in f.columns for f in frames):  # snli premises without both hypotheses
        kept = [
            f.filter("complete").drop("complete") if "complete" in f.columns else f for f in frames
        ]
        counts["dropped_incomplete"] = counts["read"] - sum(f.height for f in kept)
        frames = kept
    df = pl.concat(frames)
    length = pl.col("text").str.len_chars()
    kept = df.filter((length >= min_chars) & (length <= max_chars))
    counts["dropped_length"] = df.height - kept.height
    for i, (source, name) in enumerate(zip(sources, names, strict=True)):
        read = df.filter(pl.col("source") == name).height
        if read and not kept.filter(pl.col("source") == name).height:
            raise DataError(
                f"corpus.sources[{i}] ({source.path}): none of its {read} texts is between "
                f"corpus.min_chars = {min_chars} and corpus.max_chars = {max_chars} characters"
            )
    deduped = kept.unique(subset="text", keep="first", maintain_order=True)
    counts["dropped_duplicate"] = kept.height - deduped.height
    if max_sentences is not None and deduped.height > max_sentences:
        deduped = deduped.sample(n=max_sentences, seed=seed, shuffle=False)
        counts["dropped_sample"] = kept.height - counts["dropped_duplicate"] - deduped.height
    ids = [stable_id(t, s) for t, s in zip(deduped["text"], deduped["source"], strict=True)]
    corpus = deduped.with_columns(pl.Series("id", ids)).select("id", "text", "source")
    counts["kept"] = corpus.height
    return corpus, counts


def unlabeled_pairs(corpus: pl.DataFrame) -> pl.DataFrame:
    """The corpus as unsupervised-SimCSE training rows, a valid ``Pairs`` table: each sentence
    an anchor without a positive (the student's dropout makes its two views differ) and
    without a hard negative.

    >>> unlabeled_pairs(pl.DataFrame({"id": ["a"], "text": ["x y"], "source": ["s"]}))["mode"][0]
    'unlabeled'
    """
    rows = corpus.select(
        "id",
        pl.col("text").alias("anchor"),
        pl.lit("unlabeled").alias("mode"),
        pl.col("source").alias("generator"),
        pl.lit("unlabeled").alias("prompt_id"),
        pl.lit(0.0).alias("copy_similarity"),
    )
    empty = pl.DataFrame(schema=polars_schema(Pairs))  # the optional columns, all null
    return pl.concat([empty, rows], how="diagonal_relaxed")
