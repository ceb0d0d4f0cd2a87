"""Atomic outputs: a reader sees the old file or folder or the whole new one, never a part."""

from pathlib import Path

import pytest

from embedlab import atomic
from embedlab.atomic import atomic_write, write_text


def _folder(content: str):
    def write(tmp: Path) -> None:
        tmp.mkdir()
        (tmp / "weights").write_text(content)

    return write


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two renames"])
def test_a_folder_is_removed_only_once_the_new_one_is_in_its_place(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    path = tmp_path / "model"
    atomic_write(path, _folder("old"))
    seen_at_removal = []
    rmtree = atomic.shutil.rmtree

    def watch(target, *args, **kwargs):
        seen_at_removal.append((Path(target).name, (path / "weights").read_text()))
        rmtree(target, *args, **kwargs)

    monkeypatch.setattr(atomic.shutil, "rmtree", watch)
    atomic_write(path, _folder("new"))
    assert (path / "weights").read_text() == "new"
    assert seen_at_removal and all(content == "new" for _, content in seen_at_removal)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no .tmp, no .old


def test_a_write_that_fails_midway_leaves_the_old_file(tmp_path):
    page = write_text(tmp_path / "study.md", "# the old page\n")

    def half(tmp: Path) -> None:
        tmp.write_text("# the new pa")
        raise KeyboardInterrupt  # killed while writing

    with pytest.raises(KeyboardInterrupt):
        atomic_write(page, half)
    assert page.read_text() == "# the old page\n"
    write_text(page, "# the new page\n")
    assert page.read_text() == "# the new page\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.md"]


def test_the_figures_and_the_mining_plot_are_written_whole(tmp_path):
    import numpy as np

    from embedlab.mine.diagnostics import plot_similarity

    out = plot_similarity(
        np.linspace(0, 1, 50), np.linspace(-0.2, 0.5, 50), "b3", tmp_path / "p.png"
    )
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png"]
