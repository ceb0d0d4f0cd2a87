r"""`embedlab <stage> ...`: every stage of the pipeline, runnable with or without Snakemake.

Each command reads its inputs, validates them against their schemas, writes its outputs
atomically and logs one MLflow run (params = its settings, metrics = its figures). The stages
live in ``embedlab.stages``; this module only dispatches.

    embedlab corpus --out corpus.parquet --sources '{"path": "corpus/wordnet-examples.txt"}' \
        --mirror ../shared/data
    embedlab evaluate --model sentence-transformers/all-MiniLM-L6-v2 --name teacher \
        --out eval.parquet --mirror ../shared/data
"""

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from embedlab.errors import EmbedlabError
from embedlab.stages import STAGES
from embedlab.tracking import stage_run


def _common(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--rule", help="Snakemake rule name, recorded as an MLflow tag")
    p.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="wildcard to record as an MLflow tag (repeatable)",
    )
    return p


def parser(stages: Sequence[str] = STAGES) -> argparse.ArgumentParser:
    """The command line of ``stages`` (all of them by default: what ``--help`` lists)."""
    p = _common(argparse.ArgumentParser(prog="embedlab", description=__doc__.split("\n")[0]))
    sub = p.add_subparsers(dest="stage", required=True)
    for name in stages:
        module = importlib.import_module(f"embedlab.stages.{name}")
        sp = sub.add_parser(name, help=module.HELP, description=module.__doc__)
        # units: the runs one call makes (evaluate: one per model); by default the call itself
        sp.set_defaults(run=module.run, units=getattr(module, "units", lambda a: [a]))
        sp.add_argument("--mirror", action="append", default=[], help="mirror folder (repeatable)")
        module.add_arguments(sp)
    return p


def _stage_named(argv: Sequence[str]) -> str | None:
    """The stage an argument list runs, found without importing any stage."""
    pre = _common(argparse.ArgumentParser(add_help=False))
    pre.add_argument("stage", nargs="?")
    known, _ = pre.parse_known_args(argv)
    return known.stage if known.stage in STAGES else None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Import only the stage that runs: a stage module imports its libraries (torch and
    # sentence-transformers take seconds), and a grid of hundreds of jobs pays that per job.
    stage = _stage_named(argv)
    args = parser([stage] if stage else STAGES).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for unit in args.units(args):  # each its own MLflow run, all in this process
        tags = dict(t.split("=", 1) for t in unit.tag)
        params = {k: v for k, v in vars(unit).items() if k not in ("run", "units", "tag", "rule")}
        try:
            with stage_run(unit.stage, params, rule=unit.rule, tags=tags) as run:
                unit.run(unit, run)
        except EmbedlabError as err:  # a user's input or setting: one line; a bug: traceback
            print(f"embedlab {unit.stage}: error: {err}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
