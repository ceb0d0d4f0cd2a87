"""One default per setting: the config schema, the stages' settings dataclasses, the generated
command-line flags and config/README.md agree."""

import argparse
import inspect
import re
from dataclasses import dataclass
from typing import Literal

import pytest
import yaml

from embedlab.contracts import RUN, RUN_NAME
from embedlab.mine import MINERS
from embedlab.settings import add_arguments, as_flags, defaults, from_args, setting
from embedlab.settings.corpus import CorpusSettings
from embedlab.settings.evaluate import EvaluateSettings
from embedlab.settings.mine import MineSettings
from embedlab.settings.sweep import SweepGrid
from embedlab.settings.synthesize import SynthesizeSettings
from embedlab.settings.tables import TablesSettings
from embedlab.settings.teacher import TeacherSettings
from embedlab.settings.train import TrainSettings

from .conftest import REPO

SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
# config section -> (its settings, keys only the rules read, settings the rules fill in)
SECTIONS = {
    "corpus": (CorpusSettings, set(), {"seed"}),
    "synthesize": (
        SynthesizeSettings,
        {"gpus"},
        {"device", "teacher", "seed"},  # device: by hand only; teacher: teacher.model
    ),
    "teacher": (TeacherSettings, set(), set()),
    # a miner's options: its function's defaults (the next test); batch size and seed: wildcards
    "mine": (MineSettings, {"random", "b3", "kmeans", "hardneg"}, {"seed", "options"}),
    "train": (TrainSettings, {"gpus", "runtime", "accelerate"}, {"seed"}),
    "evaluate": (EvaluateSettings, {"gpus"}, set()),
    "tables": (TablesSettings, set(), set()),
    "sweep": (SweepGrid, set(), set()),
}


def schema_defaults(node: dict) -> dict:
    """Each key of a schema object: its default (nested objects recursively), or None."""
    out = {}
    for key, prop in node.get("properties", {}).items():
        if prop.get("type") == "object" and prop.get("properties"):
            out[key] = schema_defaults(prop)
        else:
            out[key] = prop.get("default")
    return out


def flatten(values: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in values.items():
        if isinstance(value, dict) and value and all(isinstance(k, str) for k in value):
            if key not in ("options",):  # a mapping that is one value is not nested settings
                out |= flatten(value, f"{prefix}{key}.")
                continue
        out[prefix + key] = value
    return out


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_schema_defaults_are_the_settings_defaults(section):
    cls, rule_only, filled_in = SECTIONS[section]
    schema = flatten(schema_defaults(SCHEMA["properties"][section]))
    ours = flatten(defaults(cls))
    schema = {k: v for k, v in schema.items() if k.split(".")[0] not in rule_only}
    ours = {k: v for k, v in ours.items() if k not in filled_in}
    assert sorted(schema) == sorted(ours), f"{section}: keys differ"
    differ = {k: (schema[k], ours[k]) for k in schema if schema[k] != ours[k]}
    assert not differ, f"{section}: (schema, settings) defaults differ: {differ}"


@pytest.mark.parametrize("miner", sorted(MINERS))
def test_each_miners_schema_defaults_are_its_function_defaults(miner):
    schema = schema_defaults(SCHEMA["properties"]["mine"]["properties"][miner])
    signature = inspect.signature(MINERS[miner]).parameters
    for key, default in schema.items():
        assert key in signature, f"mine.{miner}.{key} is no option of {miner}"
        if default is not None:
            assert signature[key].default == default, f"mine.{miner}.{key}"


def _keys(node: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, prop in node.get("properties", {}).items():
        if prop.get("type") == "object" and prop.get("properties"):
            keys += _keys(prop, f"{prefix}{key}.")
        else:
            keys.append(prefix + key)
    return keys


def test_every_config_key_is_documented_in_its_section_of_the_config_readme():
    text = (REPO / "config/README.md").read_text()
    parts = re.split(r"^## ", text, flags=re.M)
    by_section = {}
    for part in parts[1:]:
        heading = part.splitlines()[0]
        name = re.match(r"`(\w+)`", heading)
        by_section[name[1] if name else "top"] = part
    missing = []
    for key, prop in SCHEMA["properties"].items():
        if prop.get("type") == "object" and key in by_section:
            missing += [f"{key}.{k}" for k in _keys(prop) if f"`{k}`" not in by_section[key]]
        elif f"`{key}" not in by_section["top"]:
            missing.append(key)
    assert not missing, f"config/README.md documents no {missing}"


def test_generated_flags_read_back_every_kind_of_setting():
    @dataclass(frozen=True)
    class Nested:
        url: str = setting("http://a", "")
        tries: int | None = setting(3, "")

    @dataclass(frozen=True)
    class Example:
        name: str = setting(help="required")
        count: int = setting(2, "")
        ratio: float | None = setting(0.5, "")
        on: bool = setting(True, "")
        mode: Literal["a", "b"] = setting("a", "")
        sizes: list[int] = setting([1, 2], "")
        paths: list[str] | None = setting(None, "")
        options: dict = setting({}, "")
        rows: list[dict] = setting([], "")
        nested: Nested = setting(Nested(), "")
        import_: Nested = setting(Nested(), "")

    parser = argparse.ArgumentParser()
    add_arguments(parser, Example)
    assert from_args(Example, parser.parse_args(["--name", "x"])) == Example(name="x")
    given = {
        "name": "y",
        "count": 5,
        "ratio": None,
        "on": False,
        "mode": "b",
        "sizes": [],
        "paths": ["p q", "r"],
        "rows": [{"a": 1}],
        "nested": {"url": "http://b", "tries": None},
        "import": {"tries": 7},
    }
    got = from_args(Example, parser.parse_args(as_flags(given)))
    assert got == Example(
        name="y",
        count=5,
        ratio=None,
        on=False,
        mode="b",
        sizes=[],
        paths=["p q", "r"],
        rows=[{"a": 1}],
        nested=Nested("http://b", None),
        import_=Nested(tries=7),
    )
    assert from_args(Example, parser.parse_args(["--name", "z", "--paths", "none"])).paths is None
    with pytest.raises(SystemExit):  # a value outside the choices is refused by argparse
        parser.parse_args(["--name", "z", "--mode", "c"])


def test_a_stage_run_by_hand_tracks_where_the_default_config_does():
    from embedlab.tracking import DEFAULT_EXPERIMENT, DEFAULT_TRACKING_URI

    top = SCHEMA["properties"]
    assert top["experiment"]["default"] == DEFAULT_EXPERIMENT
    assert top["tracking_uri"]["default"] == DEFAULT_TRACKING_URI


def test_the_grid_run_name_and_its_pattern_agree():
    name = RUN_NAME.format(miner="hard-neg", bs=64, seed=3)
    assert RUN.match(name).groupdict() == {"method": "hard-neg", "bs": "64", "seed": "3"}


def test_the_default_config_repeats_only_defaults():
    """config/config.yaml shows the keys a user changes first; each value it holds is the
    schema's default (held equal to the settings' by the test above), so a stage run by hand
    with no flags is the stage the default config runs."""
    config = flatten(yaml.safe_load((REPO / "config/config.yaml").read_text()))
    schema = flatten(schema_defaults(SCHEMA))
    differ = {k: (v, schema.get(k)) for k, v in config.items() if v != schema.get(k)}
    assert not differ, f"config/config.yaml: (value, default) differ: {differ}"


def test_a_rule_passes_exactly_the_settings_of_its_stage():
    """``config_flags`` takes the settings' keys from the sections (the first that has a key)
    and leaves out a rule's own keys; a mapping that is one setting is one JSON value."""
    from embedlab.settings import config_flags
    from embedlab.settings.sweep import SweepSettings

    train = {"pooling": "cls", "lr": 0.1, "gpus": 2, "runtime": 60}
    flags = config_flags(SweepSettings, {"lr": [0.5], "seeds": [1]}, train)
    parser = argparse.ArgumentParser()
    add_arguments(parser, SweepSettings)
    got = from_args(SweepSettings, parser.parse_args(flags))
    assert (got.pooling, got.lr, got.seeds) == ("cls", [0.5], [1])
    assert "--gpus" not in flags and "--runtime" not in flags
    mine = config_flags(MineSettings, {"epochs": 2, "b3": {"p": 1}}, options={"p": 1})
    assert mine == ["--epochs", "2", "--options", '{"p": 1}']
