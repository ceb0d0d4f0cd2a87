"""Write a file so that readers see the old one or the whole new one, even after a power cut.

Example::

    atomic_write("out/stats.json", lambda tmp: Path(tmp).write_text("{}"))
"""

import os
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary name beside ``path``, fsync it, rename it onto
    ``path`` and fsync the folder. A kill leaves at most a ``.tmp`` file behind."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    with tmp.open("rb") as f:
        os.fsync(f.fileno())
    tmp.replace(path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return path
