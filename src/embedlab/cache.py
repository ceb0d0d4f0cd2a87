"""Content keys for the caches (synthesis tables, evaluation scores): a result is reused only
when everything that made it is the same, the code included.

Example::

    key = content_key(folder_hash("results/x/models/m"), stage_code_version("evaluate"), "STS12")

The code part of a key is ``embedlab.provenance``'s code version: the parsed source of every
module a stage imports, so a change anywhere in what computes a result misses the cache, and
an edit to a comment, a docstring or the formatting does not.
"""

import hashlib
from pathlib import Path


def update_with_file(h, path: str | Path) -> None:
    """Feed a file's bytes to the hash ``h``, a MiB at a time (files of any size)."""
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    update_with_file(h, path)
    return h.hexdigest()


def folder_hash(path: str | Path) -> str:
    """Hash of a file, or of every file in a folder (relative names and contents)."""
    path = Path(path)
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        h.update(str(file.relative_to(path) if file != path else file.name).encode())
        update_with_file(h, file)
    return h.hexdigest()[:16]


def content_key(*parts: object) -> str:
    """One key from several parts (their ``repr``)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(repr(part).encode())
        h.update(b"\x1f")
    return h.hexdigest()[:16]
