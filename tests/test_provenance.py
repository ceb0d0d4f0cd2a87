"""Code versions per stage, and the lineage that artefacts and runs carry."""

import shutil
from pathlib import Path

import polars as pl
import pytest

from embedlab import provenance, schemas
from embedlab.provenance import PACKAGE, stage_code_version

STAGES = ("corpus", "synthesize", "teacher", "mine", "train", "evaluate", "tables", "sweep")


@pytest.fixture
def package(tmp_path) -> Path:
    """A copy of the embedlab package to edit."""
    root = tmp_path / "embedlab"
    shutil.copytree(PACKAGE, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def versions(root: Path) -> dict[str, str]:
    return {stage: stage_code_version(stage, root=root) for stage in STAGES}


def changed_by(root: Path, file: str, text: str) -> set[str]:
    before = versions(root)
    with (root / file).open("a") as f:
        f.write(text)
    after = versions(root)
    return {stage for stage in STAGES if before[stage] != after[stage]}


def test_the_copy_has_the_versions_of_the_package(package):
    assert versions(package) == versions(PACKAGE)


def test_a_change_to_a_miner_changes_mining_and_the_sweep_only(package):
    assert changed_by(package, "mine/b3.py", "\n\ndef extra():\n    return 1\n") == {
        "mine",
        "sweep",  # it mines its trials' batches
    }


def test_a_change_to_the_tables_changes_only_tables_and_what_imports_them(package):
    changed = changed_by(package, "tables/grouped.py", "\n\nX = 2\n")
    assert changed == {"tables"}


def test_a_shared_module_changes_every_stage_that_imports_it(package):
    assert changed_by(package, "schemas.py", "\n\nX = 2\n") == set(STAGES)


def test_comments_docstrings_and_formatting_do_not_change_a_version(package):
    assert changed_by(package, "mine/b3.py", "\n# a comment\n\n\n") == set()
    before = versions(package)
    b3 = package / "mine/b3.py"
    text = b3.read_text()
    reworded = text.replace('"""B3 batches', '"""Reworded. B3 batches')  # module and function
    assert reworded.count("Reworded") == 2
    b3.write_text(reworded)
    assert versions(package) == before
    b3.write_text(reworded + '\nLABEL = "a string, not a docstring"\n')
    assert versions(package) != before


def test_a_parquet_file_carries_its_lineage_and_the_next_stage_adds_its_own(tmp_path):
    from .conftest import make_pairs

    provenance.TRACKER.start("synthesize")
    schemas.write(make_pairs(4), tmp_path / "pairs.parquet", schemas.Pairs)
    written = provenance.read_parquet_lineage(tmp_path / "pairs.parquet")
    assert list(written) == ["synthesize"]
    (entry,) = written["synthesize"]
    assert entry.startswith(stage_code_version("synthesize") + "@")

    provenance.TRACKER.start("teacher")  # a later stage reads it: the lineage carries over
    schemas.read(tmp_path / "pairs.parquet", schemas.Pairs)
    ids = pl.DataFrame({"id": ["a"], "field": ["anchor"], "row": [0]})
    schemas.write(ids, tmp_path / "ids.parquet", schemas.TeacherIds)
    lineage = provenance.read_parquet_lineage(tmp_path / "ids.parquet")
    assert lineage["synthesize"] == [entry] and list(lineage) == ["synthesize", "teacher"]


def test_lineages_merge_and_keep_both_versions_of_a_mixed_input():
    merged = provenance.merge({"mine": ["a@1"]}, {"mine": ["b@1"], "train": ["c@1"]})
    assert merged == {"mine": ["a@1", "b@1"], "train": ["c@1"]}
    assert provenance.from_run_tags(provenance.run_tags(merged)) == merged
