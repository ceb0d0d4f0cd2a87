"""What a pipeline run checks before its first job: every model and file the config names,
and the sizes that can be known in advance, so that a typo stops the run within seconds, not
after synthesis.

Each problem names the config key, its value and, for a missing model or file, every place
that was looked in. The Snakefile calls ``preflight`` in its ``onstart`` handler: once per
invocation, before the first job and never inside one; a dry run (``-n``) does not call it, so
that a config can be planned offline.

Example::

    for problem in problems(config, mirrors=["../shared/data"]):
        print(problem)
"""

import re
from collections.abc import Callable, Sequence
from pathlib import Path

from embedlab.errors import SettingError
from embedlab.resolve import NotFound, is_remote, resolve_file, resolve_model

GENERATED = ("partial", "scratch", "query")  # modes that run a generator


class ConfigError(SettingError):
    """The config names something that does not exist or sizes that cannot work."""


def check_config(config: dict, schema_path: str | Path) -> None:
    """Every way ``config`` breaks the JSON schema, one line each (the key's path, the value's
    problem), in one ``ConfigError``; Snakemake's own validation shows only the first problem
    and the whole schema. The Snakefile calls it before ``validate`` fills in the defaults."""
    import jsonschema
    import yaml

    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    lines = []
    for error in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.path))):
        key = ".".join(str(part) for part in error.path) or "(top level)"
        message = error.message if len(error.message) < 300 else error.message[:300] + " ..."
        lines.append(f"{key}: {message}")
    if lines:
        raise ConfigError(
            f"the config does not match {schema_path} ({len(lines)} problem(s); config/README.md"
            " documents every key):\n- " + "\n- ".join(lines)
        )


ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_env_name(key: str, value: str | None) -> None:
    """Refuse a value that should name an environment variable but is none (a key pasted
    where its variable's name belongs), without repeating the value: it may be a secret. The
    Snakefile calls it while it reads the config, before any command line is written.

    >>> check_env_name("synthesize.openai.api_key_env", "OPENAI_API_KEY")
    >>> check_env_name("synthesize.openai.api_key_env", "sk-abc")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    embedlab.preflight.ConfigError: synthesize.openai.api_key_env is not the name of an ...
    """
    if value is not None and not ENV_NAME.match(value):
        raise ConfigError(
            f"{key} is not the name of an environment variable (letters, digits and _; the "
            "value is not shown, as it may be a key): put the key in the environment and its "
            "variable's name here"
        )


def _model(key: str, name: str, mirrors: Sequence[str]) -> list[str]:
    return _missing(key, name, lambda: resolve_model(name, mirrors, download=False))


def _file(key: str, name: str, mirrors: Sequence[str]) -> list[str]:
    if is_remote(name):  # read by the job itself
        return []
    return _missing(key, name, lambda: resolve_file(name, mirrors))


def _missing(key: str, name: str, find: Callable[[], object]) -> list[str]:
    """The problem of a config value that ``find`` cannot resolve (with every place tried)."""
    try:
        find()
    except NotFound as err:
        return [f"{key} = {name!r}: {err}"]
    return []


def uses_corpus(synth: dict) -> bool:
    """Whether the synthesize mode reads the corpus stage's sample."""
    return synth["mode"] in ("partial", "query", "unlabeled") or (
        synth["mode"] == "import" and synth["import"]["match_corpus"]
    )


def problems(config: dict, mirrors: Sequence[str]) -> list[str]:
    """Everything wrong with a validated config (defaults filled in) that can be known now."""
    found: list[str] = []
    synth, train, mine = config["synthesize"], config["train"], config["mine"]
    found += _model("teacher.model", config["teacher"]["model"], mirrors)
    found += _model("train.init", train["init"], mirrors)
    if synth["mode"] in GENERATED and synth["backend"] != "openai":
        found += _model("synthesize.model", synth["model"], mirrors)
    if synth["mode"] in GENERATED:
        prompt = synth["prompt"] or f"config/prompts/{synth['mode']}.yaml"
        if not Path(prompt).exists():
            found.append(f"synthesize.prompt = {prompt!r}: no such file")
    if uses_corpus(synth):
        for i, source in enumerate(config["corpus"]["sources"]):
            if source.get("format") != "hf":
                found += _file(f"corpus.sources[{i}].path", source["path"], mirrors)
    if synth["mode"] == "import":
        paths = synth["import"]["path"]
        if not paths:
            found.append("synthesize.import.path is not set: mode 'import' reads that file")
        for i, path in enumerate([paths] if isinstance(paths, str) else paths or []):
            found += _file(f"synthesize.import.path[{i}]", path, mirrors)

    n = synth["n_anchors"]
    for bs in config["grid"]["batch_sizes"]:
        if bs > n:
            found.append(
                f"grid.batch_sizes has {bs} but synthesize.n_anchors = {n}: at most {n} "
                "examples reach the miner, not one full batch"
            )
    if "b3" in config["grid"]["miners"]:
        b3 = mine["b3"]
        for bs in config["grid"]["batch_sizes"]:
            if b3["cluster_size"] != "batch" and bs % b3["cluster_size"]:
                found.append(
                    f"mine.b3.cluster_size = {b3['cluster_size']} does not divide the batch "
                    f"size {bs} (grid.batch_sizes)"
                )
        if b3["p"] + b3["m"] >= n:
            found.append(
                f"mine.b3.p + mine.b3.m = {b3['p'] + b3['m']} must be below the number of "
                f"examples (at most synthesize.n_anchors = {n})"
            )
    weights = train.get("pair_weights")
    if weights is not None:
        numeric = ("score", "copy_similarity", "teacher_positive", "teacher_negative")
        if weights not in numeric:
            found.append(f"train.pair_weights = {weights!r}: not one of {list(numeric)}")
        elif weights == "score" and not (synth["feedback"] and synth["mode"] in GENERATED):
            found.append(
                "train.pair_weights = 'score' needs synthesize.feedback: true (and a generating "
                "mode): without it no row has a score"
            )
        elif weights.startswith("teacher_") and not (
            synth["teacher_margin"] is not None and synth["mode"] in GENERATED
        ):
            found.append(
                f"train.pair_weights = {weights!r} needs the teacher filter "
                "(synthesize.teacher_margin not null, and a generating mode)"
            )
    return found


def preflight(config: dict, mirrors: Sequence[str]) -> None:
    """Raise ``ConfigError`` listing every problem, if there is one."""
    found = problems(config, mirrors)
    if found:
        raise ConfigError(
            f"the config cannot run ({len(found)} problem(s)); nothing was started:\n- "
            + "\n- ".join(found)
        )
