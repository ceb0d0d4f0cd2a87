"""One module per ``embedlab <stage>`` command: its arguments and its ``run``.

Each module has ``HELP`` (one line), ``add_arguments(parser)`` (the stage's input and output
paths, then the flags generated from its settings dataclass) and ``run(args, tracker)``, which
reads, computes, writes atomically and logs to the stage's MLflow run. ``embedlab.cli`` only
dispatches; a test calls ``run`` directly. A stage whose flags take one value per model or
seed also has ``units(args)``, which :func:`split_units` builds.
"""

import argparse
from collections.abc import Sequence

from embedlab.tracking import with_tag

STAGES = (
    "corpus",
    "synthesize",
    "teacher",
    "mine",
    "sweep",
    "train",
    "evaluate",
    "prefetch",
    "tables",
)


def split_units(
    args: argparse.Namespace, per_unit: dict[str, Sequence], tag: tuple[str, Sequence]
) -> list[argparse.Namespace]:
    """One namespace per unit of a call whose flags take one value per unit (a model, a
    seed): ``per_unit`` maps each such field to its values, and ``tag`` is the MLflow tag that
    names the unit with its values. The CLI opens an MLflow run for each and runs them all in
    one process, so a grid's seeds pay the start-up (seconds of imports) once.

    >>> args = argparse.Namespace(stage="mine", seed=[0, 1], out=["a", "b"], tag=[])
    >>> units = split_units(args, {"seed": [[0], [1]], "out": args.out}, ("seed", args.seed))
    >>> [(u.seed, u.out, u.tag) for u in units]
    [([0], 'a', ['seed=0']), ([1], 'b', ['seed=1'])]
    """
    counts = [len(values) for values in per_unit.values()]
    key, names = tag
    if len({len(names), *counts}) > 1:
        flags = ", ".join(f"--{field}" for field in per_unit)
        raise SystemExit(
            f"embedlab {args.stage}: error: {flags} need one value per {key} (got {counts})"
        )
    return [
        argparse.Namespace(
            **vars(args)
            | dict(zip(per_unit, values, strict=True))
            | {"tag": with_tag(args.tag, key, name)}
        )
        for name, *values in zip(names, *per_unit.values(), strict=True)
    ]
