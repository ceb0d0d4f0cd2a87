"""Content keys for the caches (synthesis tables, evaluation scores): a result is reused only
when everything that made it is the same, the code included.

Example::

    key = content_key(folder_hash("results/x/models/m"), code_hash("embedlab.evaluate"), "STS12")
"""

import ast
import hashlib
import importlib
from pathlib import Path


def _update_with_file(h, path: Path) -> None:
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)


def folder_hash(path: str | Path) -> str:
    """Hash of a file, or of every file in a folder (relative names and contents)."""
    path = Path(path)
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        h.update(str(file.relative_to(path) if file != path else file.name).encode())
        _update_with_file(h, file)
    return h.hexdigest()[:16]


def code_hash(*modules: str) -> str:
    """Hash of the code of the named modules or packages (their ``.py`` files), as parsed: a
    change of formatting or comments keeps the key, a change of what the code does does not."""
    h = hashlib.sha256()
    for name in modules:
        module = importlib.import_module(name)
        root = Path(module.__file__)
        files = sorted(root.parent.rglob("*.py")) if root.name == "__init__.py" else [root]
        for file in files:
            h.update(file.name.encode())
            h.update(ast.dump(ast.parse(file.read_text(encoding="utf-8"))).encode())
    return h.hexdigest()[:16]


def content_key(*parts: object) -> str:
    """One key from several parts (their ``repr``)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(repr(part).encode())
        h.update(b"\x1f")
    return h.hexdigest()[:16]
