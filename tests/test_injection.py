"""Config values are data, never code: a hostile value in any string key of the config reaches
its rule's command as one argument and runs nothing (workflow/rules/common.smk, "Config values
are data").

Every job's command comes from a forced dry run (`snakemake -n -p`, what Snakemake would run)
and is then run by bash for real, with `embedlab` and `accelerate` replaced by a stub that
records its arguments. A value that escaped its quotes would create a canary file."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import REPO
from .test_workflow import snakemake, tiny_config

SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())

# Every string the schema admits, as the key's path in the config; `[]` is the first item of a
# list. Each reaches a command line, except those named in NOT_ON_A_COMMAND_LINE.
STRING_KEYS = [
    "results",
    "tracking_uri",
    "mirrors[]",
    "prefetch.folder",
    "corpus.sources[].path",
    "corpus.sources[].column",
    "corpus.sources[].split",
    "corpus.sources[].name",
    "synthesize.prompt",
    "synthesize.model",
    "synthesize.openai.base_url",
    "synthesize.import.path",
    "synthesize.import.match_pairs",
    "synthesize.cache_dir",
    "teacher.model",
    "teacher.cache_dir",
    "train.init",
    "train.pair_weights",
    "train.language[]",
    "train.license",
    "evaluate.retrieval[]",
    "evaluate.mteb[]",
    "evaluate.cache_dir",
    "tables.reference",
    "tables.experiments[]",
    "tables.compare[].a",
    "tables.compare[].b",
    "tables.title",
    "sweep.b3[]",
]
NOT_ON_A_COMMAND_LINE = {"tracking_uri"}  # jobs get it through the environment
# Strings the schema holds to a pattern (names that become paths): a hostile value is refused.
PATTERNED = {"experiment": ".", "train.accelerate": "cpu"}
# Strings refused while the config is read unless they name an environment variable
# (test_a_key_written_where_its_variables_name_belongs_is_refused_unprinted)
ENV_NAMES = {"synthesize.openai.api_key_env"}


def schema_strings(node: dict, path: str = "") -> set[str]:
    """The keys of ``node`` (a JSON schema) whose value is, or may hold, a free string."""
    found: set[str] = set()
    types = node.get("type", [])
    types = [types] if isinstance(types, str) else types
    variants = node.get("oneOf", [])
    if "string" in types or any(v.get("type") == "string" for v in variants):
        found.add(path)
    for name, child in node.get("properties", {}).items():
        found |= schema_strings(child, f"{path}.{name}" if path else name)
    items = node.get("items") or next((v["items"] for v in variants if "items" in v), None)
    if items is not None:
        if items.get("type") == "object" and "properties" not in items:
            found.add(f"{path}[]")  # free objects: their values are strings too
        found |= schema_strings(items, f"{path}[]")
    return found


def test_the_sweep_covers_every_string_key_of_the_schema():
    """A string key added to the schema fails here until the sweep below covers it."""
    covered = set(STRING_KEYS) | set(PATTERNED) | ENV_NAMES | {"synthesize.import.path[]"}
    assert schema_strings(SCHEMA) == covered


def hostile(tag: str, canary: Path) -> str:
    """A value that runs ``touch`` in four ways if a shell ever reads it unquoted."""
    c = f"{canary}/{tag}"
    return f"v-{tag} $(touch {c}-a) `touch {c}-b`; touch {c}-c ' \" & touch {c}-d | x"


def set_key(config: dict, key: str, value: str, tmp_path: Path) -> None:
    """Put ``value`` where ``key`` says (a list key as its only item; the few keys whose value
    is a file Snakemake needs get a file of that name)."""
    *parents, last = key.split(".")
    node = config
    for name in parents:
        if name.endswith("[]"):
            node = node.setdefault(name.removesuffix("[]"), [{}])[0]
        else:
            node = node.setdefault(name, {})
    name = last.removesuffix("[]")
    if key == "sweep.b3[]":
        node[name] = [{"note": value}]
    elif last.endswith("[]"):
        node[name] = [value]
    else:
        node[name] = value
    if key in ("synthesize.prompt", "tables.reference"):
        source = REPO / (
            "config/prompts/partial.yaml" if "prompt" in key else "config/reference/sts.yaml"
        )
        path = tmp_path / value
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source.read_text())


STUB = """#!{python}
import json, os, sys
with open(os.environ["INJECTION_ARGV"], "a") as f:
    f.write(json.dumps(sys.argv) + "\\n")
"""


@pytest.mark.slow
def test_a_hostile_value_in_every_string_key_runs_nothing(tmp_path):
    canary = tmp_path / "canary"
    canary.mkdir()
    config = yaml.safe_load(tiny_config(tmp_path).read_text())
    config["prefetch"] = {"enabled": True}
    config["train"] = {"accelerate": "cpu"}  # the launcher's command line too
    config["tables"]["compare"] = [{"a": "b3", "a_bs": 8, "b": "random", "b_bs": 8}]
    values = {}
    for i, key in enumerate(STRING_KEYS):
        values[key] = hostile(f"k{i}", canary)
        set_key(config, key, values[key], tmp_path)
    path = tmp_path / "hostile.yaml"
    path.write_text(yaml.safe_dump(config))

    plan = snakemake(
        "-n", "-p", "--forceall", "all", "sweep", "--configfile", str(path), cwd=tmp_path
    )
    assert plan.returncode == 0, plan.stderr[-3000:] + plan.stdout[-3000:]
    commands = re.findall(r"^Shell command: (.+)$", plan.stdout, flags=re.M)
    commands = [c for c in commands if c != "None"]
    rules = set(re.findall(r"^(?:local)?rule (\w+):$", plan.stdout, flags=re.M)) - {"all"}
    assert rules == {
        *("prefetch", "corpus", "synthesize", "teacher", "mine", "sweep", "student_init"),
        *("train", "evaluate_teacher", "evaluate", "evaluate_seeds", "tables"),
    }
    assert len(commands) == len(re.findall(r"^(?:local)?rule (?!all:)", plan.stdout, flags=re.M))
    for log in re.findall(r"^    log: (.+)$", plan.stdout, flags=re.M):
        Path(tmp_path, log).parent.mkdir(parents=True, exist_ok=True)  # Snakemake makes these

    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for name in ("embedlab", "accelerate"):
        (stubs / name).write_text(STUB.format(python=sys.executable))
        (stubs / name).chmod(0o755)
    argv_log = tmp_path / "argv.jsonl"
    env = {
        **os.environ,
        "PATH": f"{stubs}:{Path(sys.executable).parent}:{os.environ['PATH']}",
        "INJECTION_ARGV": str(argv_log),
    }
    for command in commands:
        done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True)
        assert done.returncode == 0, (command, done.stderr)

    assert sorted(p.name for p in canary.iterdir()) == []  # nothing ran
    calls = [json.loads(line) for line in argv_log.read_text().splitlines()]
    assert len(calls) == len(commands)
    arguments = [a for call in calls for a in call]
    for key, value in values.items():
        if key in NOT_ON_A_COMMAND_LINE:
            continue
        as_json = json.dumps(value)[1:-1]  # inside a JSON option (corpus sources, sweep.b3)
        assert any(value in a or as_json in a for a in arguments), key  # arrived whole
    train = next(c for c in calls if "train" in c and "launch" in c)
    assert train[1:4] == ["launch", "--config_file", "config/accelerate/cpu.yaml"]
    assert re.fullmatch(r"\d+", train[train.index("--main_process_port") + 1])


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("experiment", ".."),
        ("experiment", "."),
        ("experiment", "a/b"),
        ("experiment", "../outside"),
        ("train.accelerate", "../../tmp/x"),
        ("train.accelerate", "cpu $(touch PWNED)"),
    ],
)
def test_a_name_that_becomes_a_path_cannot_leave_its_folder(tmp_path, key, value):
    section, _, name = key.rpartition(".")
    config = yaml.safe_load(tiny_config(tmp_path).read_text())
    (config.setdefault(section, {}) if section else config)[name] = value
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake("-n", "--configfile", str(path), cwd=tmp_path)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert name in output and repr(value) in output and "does not match" in output
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "corpus.parquet").exists()


@pytest.mark.parametrize("args", [["-n", "-p"], ["--cores", "1"]])
def test_a_key_written_where_its_variables_name_belongs_is_refused_unprinted(tmp_path, args):
    """`api_key_env: sk-…` used to reach the command line, the Snakemake log and .snakemake,
    and requests went out without a key. It stops while the config is read, unprinted."""
    canary = "sk-canary-" + "7" * 24
    config = tiny_config(tmp_path, synthesize={"openai": {"api_key_env": canary}})
    result = snakemake(*args, "--configfile", str(config), cwd=tmp_path)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "synthesize.openai.api_key_env is not the name of an environment variable" in output
    assert canary not in output
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "tiny.yaml"]
    assert [p for p in written if canary.encode() in p.read_bytes()] == []
    assert not (tmp_path / "results").exists()


def test_the_openai_backend_refuses_a_key_as_a_variable_name_and_warns_without_one(
    monkeypatch, caplog
):
    from embedlab.preflight import ConfigError
    from embedlab.synth.openai_http import OpenAIBackend

    with pytest.raises(ConfigError) as refused:
        OpenAIBackend("m", "http://localhost:9", api_key_env="sk-" + "8" * 30)
    assert "8" * 30 not in str(refused.value)
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    OpenAIBackend("m", "http://localhost:9", api_key_env="NO_SUCH_KEY_VAR")
    assert "$NO_SUCH_KEY_VAR is not set" in caplog.text
