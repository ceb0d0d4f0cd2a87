"""Stage settings: one frozen dataclass per stage, in this package's module of the stage
(``embedlab.settings.train``, ...), is the only home of its defaults.

A stage's command-line flags are generated from its dataclass (name, type, default, help), and
the Snakemake rules turn their config sections into the same flags with :func:`config_flags`
(exactly the dataclass's keys: no rule keeps a list of keys), so ``embedlab train`` typed by
hand and the ``train`` rule run the same experiment. The settings modules import nothing heavy:
the Snakefile reads them at every start. The config schema repeats the defaults (Snakemake
fills them in), and ``tests/test_settings.py`` holds the two equal and checks that
``config/README.md`` documents every key.

Conventions: a key ``n_anchors`` is the flag ``--n-anchors``; a nested dataclass ``openai`` gives
``--openai-base-url``; a trailing ``_`` is dropped (``import_`` is the config key ``import``);
a bool is ``--key`` / ``--no-key``; a list takes several values; a mapping is one JSON value; an
optional value accepts ``none``.

Example::

    @dataclass(frozen=True)
    class Settings:
        n_anchors: int = setting(320, "sentences to write pairs for")

    add_arguments(parser, Settings)          # --n-anchors N
    from_args(Settings, parser.parse_args())  # Settings(n_anchors=...)
    as_flags({"n_anchors": 64})               # ['--n-anchors', '64']
"""

import argparse
import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal

MISSING = dataclasses.MISSING


def setting(default: Any = MISSING, help: str = "", **metadata: Any) -> Any:
    """A settings field: its default (lists and mappings copied per instance) and its help."""
    metadata = {"help": help, **metadata}
    if isinstance(default, list | dict):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def key(field: dataclasses.Field) -> str:
    """The config key of a field (``import_`` is ``import``)."""
    return field.name.rstrip("_")


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _parts(annotation: Any) -> tuple[Any, bool]:
    """(the type without ``None``, whether ``None`` is allowed)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return (args[0] if len(args) == 1 else annotation), len(args) < len(
            typing.get_args(annotation)
        )
    return annotation, False


def _scalar(kind: Any, optional: bool):
    """The argparse ``type`` of one value, and its choices."""
    choices = None
    if typing.get_origin(kind) is Literal:
        choices = list(typing.get_args(kind))
        kind = type(choices[0])
    convert = json.loads if kind in (dict, Any) or typing.get_origin(kind) is dict else kind

    def parse(text: str):
        if optional and text.lower() in ("none", "null"):
            return None
        return convert(text)

    parse.__name__ = getattr(kind, "__name__", "value")  # argparse names it in its errors
    if choices is not None and optional:
        choices = [*choices, None]
    return parse, choices


def add_arguments(
    parser: argparse.ArgumentParser, cls: type, prefix: str = "", required: bool = True
) -> None:
    """Add one flag per field of ``cls`` (recursively for nested settings) to ``parser``."""
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        name = prefix + key(field)
        kind, optional = _parts(hints[field.name])
        if dataclasses.is_dataclass(kind):
            add_arguments(parser, kind, f"{name}_")
            continue
        help = field.metadata.get("help", "")
        has_default = field.default is not MISSING or field.default_factory is not MISSING
        default = field.default if field.default is not MISSING else None
        if field.default_factory is not MISSING:
            default = field.default_factory()
        if has_default:
            help = f"{help} (default: {_shown(default)})".strip()
        options: dict[str, Any] = {"dest": name, "help": help, "default": default}
        if not has_default:
            options |= {"required": required}
        if kind is bool:
            parser.add_argument(flag(name), action=argparse.BooleanOptionalAction, **options)
            continue
        if typing.get_origin(kind) in (list, tuple):
            (item,) = {a for a in typing.get_args(kind) if a is not Ellipsis}
            options["nargs"] = "*"
            kind = item
        options["type"], options["choices"] = _scalar(kind, optional)
        parser.add_argument(flag(name), **options)


def _shown(value: Any) -> str:
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def from_args(cls: type, args: argparse.Namespace | Mapping[str, Any], prefix: str = ""):
    """The settings that parsed ``args`` (from :func:`add_arguments`) describe."""
    values = vars(args) if isinstance(args, argparse.Namespace) else args
    hints = typing.get_type_hints(cls)
    found = {}
    for field in dataclasses.fields(cls):
        name = prefix + key(field)
        kind, _ = _parts(hints[field.name])
        if dataclasses.is_dataclass(kind):
            found[field.name] = from_args(kind, values, f"{name}_")
        elif name in values:
            value = values[name]
            found[field.name] = None if value == [None] else value  # a list flag given "none"
    return cls(**found)


def defaults(cls: type) -> dict[str, Any]:
    """The defaults of ``cls`` by config key, nested settings as mappings (fields without a
    default are left out)."""
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        kind, _ = _parts(hints[field.name])
        if dataclasses.is_dataclass(kind):
            out[key(field)] = defaults(kind)
        elif field.default is not MISSING:
            out[key(field)] = field.default
        elif field.default_factory is not MISSING:
            out[key(field)] = field.default_factory()
    return out


def as_flags(section: Mapping[str, Any], skip: typing.Collection[str] = (), prefix: str = ""):
    """A config section as the flags :func:`add_arguments` made: ``{"n_anchors": 3}`` gives
    ``["--n-anchors", "3"]``. A nested mapping is nested settings (``openai.base_url`` is
    ``--openai-base-url``); a mapping that is one value (a miner's options) is passed by the
    caller as JSON, its key in ``skip``."""
    out: list[str] = []
    for name, value in section.items():
        if name in skip:
            continue
        if isinstance(value, Mapping):
            out += as_flags(value, prefix=f"{prefix}{name}_")
        elif isinstance(value, bool):
            out.append(flag(f"{'' if value else 'no-'}{prefix}{name}"))
        elif isinstance(value, list):
            out += [flag(prefix + name), *(_value(v) for v in value)]
        else:
            out += [flag(prefix + name), _value(value)]
    return out


def config_flags(cls: type, *sections: Mapping[str, Any], **values: Any) -> list[str]:
    """The flags of ``cls``'s settings whose keys the config ``sections`` hold (``values``
    first, then the first section that has the key): what a Snakemake rule passes to its stage.
    A key that is not a setting of ``cls`` (a rule's own, such as ``gpus``) is not passed, so
    no rule keeps a list of keys to pass or to skip.

    Example (the mine rule: ``b3`` is a miner's section, not a setting)::

        config_flags(MineSettings, {"epochs": 2, "b3": {"p": 2}})   # ['--epochs', '2']
    """
    found: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        name = key(field)
        for section in (values, *sections):
            if name in section:
                found[name] = section[name]
                break
    hints = typing.get_type_hints(cls)
    nested = [key(f) for f in dataclasses.fields(cls) if dataclasses.is_dataclass(hints[f.name])]
    one_value = [k for k, v in found.items() if isinstance(v, Mapping) and k not in nested]
    flags = as_flags(found, skip=one_value)
    for name in one_value:  # a mapping that is one setting (a miner's options): one JSON value
        flags += [flag(name), _value(found[name])]
    return flags


def from_config(cls: type, *sections: Mapping[str, Any], **values: Any):
    """The settings a rule's stage would run with, from the same config sections: what a script
    outside the workflow (a benchmark) uses to run a stage as a study does.

    Example::

        from_config(SynthesizeSettings, {"n_anchors": 2000}, seed=0).n_anchors   # 2000
    """
    import argparse

    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser, cls)
    return from_args(cls, parser.parse_args(config_flags(cls, *sections, **values)))


def _value(value: Any) -> str:
    if value is None:
        return "none"
    return json.dumps(value) if isinstance(value, Mapping) else str(value)
