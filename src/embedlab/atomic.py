"""Write a file or a folder so that readers see the old one or the whole new one, even after a
power cut: write under a temporary name, fsync every file and folder written, rename, fsync the
parent folder (a rename alone can leave an empty file behind a power cut). A folder that is
already there is swapped with the new one in one step (Linux ``renameat2(RENAME_EXCHANGE)``)
and removed after; where the system has no such call, it is renamed aside first, and a reader
can find the path missing for the moment between two renames (never half written).

Every output a stage writes goes through here (``schemas.write`` for tables).

Example::

    atomic_write("out/stats.json", lambda tmp: Path(tmp).write_text("{}"))
    atomic_write("out/model", lambda tmp: model.save(str(tmp)))      # a folder
    write_text("out/page.md", "# page")
    write_figure(fig, "out/figures/avg.png", dpi=150)
"""

import ctypes
import errno
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
    put it in place of ``path`` and fsync the parent. A kill leaves at most a ``.tmp`` (or a
    ``.old`` folder) behind; a folder already at ``path`` is removed only once the new one is
    in its place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if tmp.is_dir():
        shutil.rmtree(tmp)
    write(tmp)
    fsync(tmp)
    if path.is_dir() and tmp.is_dir():
        _replace_folder(tmp, path)
    else:
        tmp.replace(path)
    fsync_entry(path.parent)
    return path


def write_text(path: str | Path, text: str) -> Path:
    """``atomic_write`` of a text file (UTF-8)."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_figure(fig, path: str | Path, **options) -> Path:
    """``atomic_write`` of a matplotlib figure, in the format its suffix names (PNG without one)."""
    path = Path(path)
    kind = path.suffix[1:] or "png"
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format=kind, **options))


def _replace_folder(new: Path, old: Path) -> None:
    """Put the folder ``new`` at ``old``'s path, then remove the old folder."""
    if _exchange(new, old):  # old now lies at new's name
        shutil.rmtree(new)
        return
    aside = old.with_name(old.name + ".old")
    if aside.is_dir():
        shutil.rmtree(aside)
    old.replace(aside)
    new.replace(old)
    shutil.rmtree(aside)


# Linux renameat2's flag that swaps two paths atomically, and its "current folder" descriptor
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step; False where the C library or the file system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    done = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if done == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))
