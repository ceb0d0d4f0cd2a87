"""Stage every model and data file a config names into one folder, for offline compute nodes.

Compute nodes of a cluster often have no network. The ``prefetch`` rule runs this on the submit
node: each model is resolved as usual (path, PyPI package, mirror, hub) and copied to
``<out>/models/<id>/``; each data file or folder is copied from the first mirror that has it to
``<out>/<relative path>``. ``<out>`` is then the first mirror of every job, so the jobs resolve
everything there without the hub. A manifest records what was staged and from where; staging
again skips what is already there.

Example::

    stage(["sentence-transformers/all-MiniLM-L6-v2"], ["sts/STSBenchmark"], "resources",
          mirrors=["../shared/data"])
"""

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from embedlab.atomic import atomic_write, write_text
from embedlab.resolve import resolve_file, resolve_model


def _copy(source: Path, target: Path) -> None:
    """Copy a file or folder to ``target`` atomically."""
    if source.is_dir():
        atomic_write(target, lambda tmp: shutil.copytree(source, tmp, symlinks=False))
    else:
        atomic_write(target, lambda tmp: shutil.copy2(source, tmp))


def stage(
    models: Sequence[str],
    data: Sequence[str],
    out: str | Path,
    mirrors: Sequence[str | Path] = (),
) -> dict[str, dict[str, str]]:
    """Copy ``models`` (ids or paths) and ``data`` (paths relative to a mirror) under ``out``.

    Returns the manifest {name: {"kind", "from", "to"}} and writes it to ``out/manifest.json``.
    A model that is a GGUF file in a package keeps its file name, so it resolves the same way.
    """
    out = Path(out)
    manifest: dict[str, dict[str, str]] = {}
    for name in tqdm(list(models), desc="prefetch models", unit="model"):
        target = out / "models" / name
        if not Path(name).expanduser().exists() and target.exists():
            manifest[name] = {"kind": "model", "from": "staged before", "to": str(target)}
            continue
        found = resolve_model(name, mirrors)
        if found.where == "path":  # a local folder already: nothing to stage
            manifest[name] = {"kind": "model", "from": "path", "to": found.path}
            continue
        source = Path(found.path)
        if found.gguf_file:  # stage the one weights file with its tokenizer files, if any
            target.mkdir(parents=True, exist_ok=True)
            for item in source.iterdir():
                if item.is_file() and (item.suffix != ".gguf" or item.name == found.gguf_file):
                    _copy(item, target / item.name)
        else:
            _copy(source, target)
        manifest[name] = {"kind": "model", "from": f"{found.where}:{found.path}", "to": str(target)}
    for name in tqdm(list(data), desc="prefetch data", unit="item"):
        target = out / name
        if target.exists():
            manifest[name] = {"kind": "data", "from": "staged before", "to": str(target)}
            continue
        source = resolve_file(name, mirrors)
        _copy(source, target)
        manifest[name] = {"kind": "data", "from": str(source), "to": str(target)}
    text = json.dumps(manifest, indent=1, sort_keys=True)
    write_text(out / "manifest.json", text)
    return manifest
