"""Write a file or a folder so that readers see the old one or the whole new one, even after a
power cut: write under a temporary name, fsync every file and folder written, rename, fsync the
parent folder (a rename alone can leave an empty file behind a power cut).

Example::

    atomic_write("out/stats.json", lambda tmp: Path(tmp).write_text("{}"))
    atomic_write("out/model", lambda tmp: model.save(str(tmp)))      # a folder
"""

import os
import shutil
from collections.abc import Callable
from pathlib import Path


def fsync_entry(path: str | Path) -> None:
    """Flush one file, or one folder's entries (not what is under them), to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync(path: str | Path) -> None:
    """Flush a file, or every file and folder under a folder and the folder itself, to disk."""
    path = Path(path)
    if path.is_dir():
        for inner in sorted(path.rglob("*"), reverse=True):  # files before their folders
            if not inner.is_symlink():
                fsync_entry(inner)
    fsync_entry(path)


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary name beside ``path`` (a file or a folder), fsync it,
    put it in place of ``path`` and fsync the parent. A kill leaves at most a ``.tmp`` behind;
    a folder already at ``path`` is replaced (removed just before the rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if tmp.is_dir():
        shutil.rmtree(tmp)
    write(tmp)
    fsync(tmp)
    if path.is_dir() and tmp.is_dir():
        shutil.rmtree(path)
    tmp.replace(path)
    fsync_entry(path.parent)
    return path
