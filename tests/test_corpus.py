import polars as pl
import pytest

from embedlab.corpus import Source, build_corpus
from embedlab.ids import stable_id
from embedlab.schemas import DataError


def test_stable_id_depends_on_text_and_source():
    assert stable_id("a b", "x") == stable_id("a b", "x")
    assert stable_id("a b", "x") != stable_id("a b", "y")
    assert stable_id("a b", "x") != stable_id("a c", "x")


def test_txt_csv_parquet_are_merged_and_deduplicated(tmp_path):
    (tmp_path / "a.txt").write_text("A first sentence.\nA  second   sentence.\nA first sentence.\n")
    pl.DataFrame({"sentence": ["A second sentence.", "A third one."]}).write_csv(tmp_path / "b.csv")
    pl.DataFrame({"text": ["A fourth one.", "A third one."]}).write_parquet(tmp_path / "c.parquet")
    corpus, counts = build_corpus(
        [
            Source(str(tmp_path / "a.txt")),
            Source(str(tmp_path / "b.csv"), column="sentence"),
            Source(str(tmp_path / "c.parquet"), name="user"),
        ]
    )
    assert corpus["text"].to_list() == [
        "A first sentence.",
        "A second sentence.",
        "A third one.",
        "A fourth one.",
    ]
    assert corpus["source"].to_list() == ["a", "a", "b", "user"]
    assert counts["dropped_duplicate"] == 3
    assert corpus["id"].n_unique() == corpus.height


def test_length_filter_and_sampling_are_deterministic(tmp_path):
    lines = [f"sentence number {i} here" for i in range(50)] + ["tiny"]
    (tmp_path / "a.txt").write_text("\n".join(lines))
    one, counts = build_corpus([Source(str(tmp_path / "a.txt"))], min_chars=10, max_sentences=20)
    two, _ = build_corpus([Source(str(tmp_path / "a.txt"))], min_chars=10, max_sentences=20)
    assert one.equals(two)
    assert one.height == 20 and counts["dropped_length"] == 1
    assert "tiny" not in one["text"].to_list()


def test_empty_line_names_file_and_row(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("fine sentence\n\nanother\n")
    with pytest.raises(DataError, match=r"bad\.txt: line 2 has an empty text"):
        build_corpus([Source(str(path))])


def test_null_text_names_file_and_row(tmp_path):
    path = tmp_path / "bad.parquet"
    pl.DataFrame({"text": ["ok", "fine", None]}).write_parquet(path)
    with pytest.raises(DataError, match=r"bad\.parquet: row 3 has a null text"):
        build_corpus([Source(str(path))])


def test_missing_column_is_named(tmp_path):
    path = tmp_path / "bad.csv"
    pl.DataFrame({"sentence": ["ok"]}).write_csv(path)
    with pytest.raises(DataError, match="no column 'text'"):
        build_corpus([Source(str(path))])


def test_mirror_sources(mirror):
    corpus, counts = build_corpus(
        [
            Source("corpus/wordnet-examples.txt"),
            Source("sts/STSBenchmark/sts-train.csv", format="stsb"),
            Source("sts/SICK/SICK_train.txt", format="sick"),
        ],
        mirrors=[mirror],
    )
    assert counts["read"] == 29271 + 2 * 5749 + 2 * 4500
    assert set(corpus["source"]) == {"wordnet-examples", "sts-train", "SICK_train"}
    assert corpus["text"].n_unique() == corpus.height


def test_hf_source_reads_a_local_dataset_folder(tmp_path):
    folder = tmp_path / "my-dataset"
    folder.mkdir()
    pl.DataFrame({"sentence": ["One sentence here.", "Another one here."]}).write_csv(
        folder / "train.csv"
    )
    corpus, _ = build_corpus([Source(str(folder), format="hf", column="sentence")])
    assert corpus["text"].to_list() == ["One sentence here.", "Another one here."]
    assert corpus["source"].to_list() == ["my-dataset"] * 2


def test_a_source_that_gives_nothing_is_named_with_why(tmp_path):
    """An empty file ended in a pandera 'got null'; a file whose every line the length filter
    drops ended in an error naming the corpus stage's own output."""
    from embedlab.corpus import Source, build_corpus
    from embedlab.schemas import DataError

    good = tmp_path / "good.txt"
    good.write_text("A sentence long enough to keep.\nAnother sentence long enough.\n")
    empty, short = tmp_path / "empty.txt", tmp_path / "short.txt"
    empty.write_text("")
    short.write_text("ab\ncd\nef\n")
    with pytest.raises(DataError, match=r"corpus.sources\[1\] \(.*empty.txt\): no text was read"):
        build_corpus([Source(path=str(good)), Source(path=str(empty))])
    with pytest.raises(DataError) as refused:
        build_corpus([Source(path=str(good)), Source(path=str(short))], min_chars=12)
    assert "corpus.sources[1]" in str(refused.value) and "none of its 3 texts" in str(refused.value)
    assert "corpus.min_chars = 12" in str(refused.value)
