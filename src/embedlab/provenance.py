"""Which code made a result: the version of a stage's code, the commit, and the lineage of
every stage behind an artefact.

A stage's *code version* is a hash of the source of every ``embedlab`` module the stage's
command imports, followed through the imports without running them (as parsed: comments,
docstrings and formatting do not count, what the code does does). The Snakemake rules pass it
as a parameter, so a rule reruns when its stage's code changes, and only then; the caches put
it in their keys.

Every table a stage writes carries its *lineage* in the Parquet metadata (and a trained model
folder in ``LINEAGE_FILE``): for each stage behind it, the code version, commit and whether the
tree had uncommitted changes. A stage reads the lineage of its inputs, adds its own entry and
records the whole in its MLflow run (``lineage.<stage>`` tags), so the tables rule can list
every code version behind a page and refuse a page whose runs mix them.

Example::

    stage_code_version("mine")          # '3f1c9a0b2d4e6f81' (changes when mine's code does)
    code_version("embedlab.evaluate")   # the evaluation package and what it imports
"""

import ast
import functools
import hashlib
import json
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent  # src/embedlab
LINEAGE_KEY = "embedlab.lineage"  # Parquet metadata key
LINEAGE_FILE = "embedlab_lineage.json"  # in a model folder
TAG_LINEAGE = "lineage."  # + a stage: its versions behind a run (MLflow tag)
TAG_CODE_VERSION = "code.version"  # the stage's own code version (MLflow tag)
TAG_CODE_COMMIT = "code.commit"
TAG_CODE_DIRTY = "code.dirty"


def _file(module: str, root: Path = PACKAGE) -> Path | None:
    """The source file of an ``embedlab`` module (a package's ``__init__.py``) in the package
    folder ``root``, found without importing it."""
    parts = module.split(".")
    if parts[0] != "embedlab":
        return None
    base = root.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(file: Path, root: Path) -> set[str]:
    """The ``embedlab`` modules a file imports, anywhere in it (imports inside functions
    included: the stages import their heavy parts late). ``from embedlab.teacher import embed``
    is the module ``embedlab.teacher.embed``; ``from embedlab.tables import fetch_scores`` is
    the package's ``__init__``."""
    found = set()
    for node in ast.walk(_parsed(file)[0]):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                inner = f"{node.module}.{alias.name}"
                found.add(inner if _file(inner, root) else node.module)
    return {m for m in found if _file(m, root) is not None}


def _parsed(file: Path) -> tuple[ast.Module, str]:
    """A source file's syntax tree and the hash of its dump, parsed once per content (keyed by
    the file's size and modification time)."""
    stat = file.stat()
    return _parse(file, stat.st_mtime_ns, stat.st_size)


@functools.cache
def _parse(file: Path, mtime_ns: int, size: int) -> tuple[ast.Module, str]:
    tree = _without_docstrings(ast.parse(file.read_text(encoding="utf-8")))
    return tree, hashlib.sha256(ast.dump(tree).encode()).hexdigest()


def _without_docstrings(tree: ast.Module) -> ast.Module:
    """``tree`` without the docstrings of its module, classes and functions: they say what the
    code does and change no result, so editing one keeps every version (and every cache)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                if isinstance(first.value.value, str):
                    node.body = node.body[1:] or [ast.Pass()]
    return tree


def module_files(*modules: str, root: Path = PACKAGE) -> list[Path]:
    """Every source file behind ``modules``: theirs and, transitively, those of the
    ``embedlab`` modules they import. A package above an imported module counts by its own
    text, not by what its ``__init__`` re-exports (``embedlab.mine.b3`` does not depend on
    the other miners that ``embedlab.mine`` re-exports); a package imported for its names
    (``from embedlab.mine import MINERS``) counts with everything its ``__init__`` imports."""
    todo, followed = list(modules), set()
    files: set[Path] = set()
    while todo:
        module = todo.pop()
        if module in followed:
            continue
        file = _file(module, root)
        if file is None:
            raise ModuleNotFoundError(f"no embedlab module {module!r} under {root}")
        followed.add(module)
        files.add(file)
        todo += sorted(_imports(file, root))
        parts = module.split(".")
        files |= {f for i in range(1, len(parts)) if (f := _file(".".join(parts[:i]), root))}
    return sorted(files)


def code_version(*modules: str, root: Path = PACKAGE) -> str:
    """Hash of the code behind ``modules`` (:func:`module_files`), as parsed."""
    h = hashlib.sha256()
    for file in module_files(*modules, root=root):
        h.update(str(file.relative_to(root)).encode())
        h.update(_parsed(file)[1].encode())
    return h.hexdigest()[:16]


def stage_code_version(stage: str, root: Path = PACKAGE) -> str:
    """The code version of ``embedlab <stage>`` (its command module and all it imports)."""
    return code_version(f"embedlab.stages.{stage}", root=root)


@functools.cache
def git_state() -> tuple[str, bool]:
    """The commit of the checkout the package was loaded from and whether the package's own
    files (``src/embedlab``, untracked modules included) differ from it; ``("unknown", False)``
    outside a git checkout. Other files (docs a study just published, configs) do not make
    the code dirty: the config is recorded by its own hash."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(PACKAGE), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=normal", "--", "."))
    except (OSError, subprocess.SubprocessError):
        return "unknown", False
    return commit, dirty


def entry(stage: str) -> str:
    """One stage's lineage entry: ``<code version>@<commit 12>``, ``+dirty`` when the tree had
    uncommitted changes."""
    commit, dirty = git_state()
    return f"{stage_code_version(stage)}@{commit[:12]}{'+dirty' if dirty else ''}"


def split_entry(entry: str) -> tuple[str, str]:
    """A lineage entry's (code version, commit): the reverse of :func:`entry`.

    >>> split_entry("3f1c9a0b2d4e6f81@abe56ce051e7+dirty")
    ('3f1c9a0b2d4e6f81', 'abe56ce051e7+dirty')
    """
    version, _, commit = entry.partition("@")
    return version, commit


Lineage = dict[str, list[str]]  # stage -> its entries behind an artefact


def merge(*lineages: Mapping[str, Iterable[str]]) -> Lineage:
    """The union of lineages (a stage with two entries keeps both: a mixed input)."""
    out: dict[str, set[str]] = {}
    for lineage in lineages:
        for stage, entries in lineage.items():
            out.setdefault(stage, set()).update(entries)
    return {stage: sorted(out[stage]) for stage in sorted(out)}


class Tracker:
    """The lineage of the stage running in this process: what its inputs carried, plus its own
    entry. ``tracking.stage_run`` starts it; ``schemas.read`` and the model loaders add what
    they read; ``schemas.write`` and the model writer stamp ``current()``."""

    def __init__(self) -> None:
        self.stage: str | None = None
        self.inputs: Lineage = {}

    def start(self, stage: str) -> None:
        self.stage, self.inputs = stage, {}

    def add(self, lineage: Mapping[str, Iterable[str]]) -> None:
        self.inputs = merge(self.inputs, lineage)

    def current(self) -> Lineage:
        own = {self.stage: [entry(self.stage)]} if self.stage else {}
        return merge(self.inputs, own)


TRACKER = Tracker()


def parquet_metadata() -> dict[str, str]:
    """The metadata a stage's Parquet output carries: its lineage as JSON."""
    return {LINEAGE_KEY: json.dumps(TRACKER.current(), sort_keys=True)}


def read_parquet_lineage(path: str | Path) -> Lineage:
    """The lineage a Parquet file carries (empty for a file written elsewhere)."""
    import polars as pl

    try:
        text = pl.read_parquet_metadata(path).get(LINEAGE_KEY)
    except (OSError, pl.exceptions.PolarsError):
        return {}
    return json.loads(text) if text else {}


def write_folder_lineage(folder: str | Path) -> None:
    """Stamp a model folder with the current lineage."""
    text = json.dumps(TRACKER.current(), indent=1, sort_keys=True)
    (Path(folder) / LINEAGE_FILE).write_text(text + "\n")


def read_folder_lineage(folder: str | Path) -> Lineage:
    """The lineage a model folder carries (empty for a folder made elsewhere: a hub model)."""
    path = Path(folder) / LINEAGE_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def run_tags(lineage: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """MLflow tags of a run: ``lineage.<stage>`` = its entries, comma-separated."""
    return {f"{TAG_LINEAGE}{stage}": ",".join(entries) for stage, entries in lineage.items()}


def from_run_tags(tags: Mapping[str, str]) -> Lineage:
    """The lineage recorded in a run's tags (:func:`run_tags`)."""
    return {
        key.removeprefix(TAG_LINEAGE): value.split(",")
        for key, value in tags.items()
        if key.startswith(TAG_LINEAGE) and value
    }
