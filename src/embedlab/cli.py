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

from embedlab.errors import EmbedlabError
from embedlab.stages import STAGES
from embedlab.tracking import stage_run


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="embedlab", description=__doc__.split("\n")[0])
    p.add_argument("--rule", help="Snakemake rule name, recorded as an MLflow tag")
    p.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="wildcard to record as an MLflow tag (repeatable)",
    )
    sub = p.add_subparsers(dest="stage", required=True)
    for name in STAGES:
        module = importlib.import_module(f"embedlab.stages.{name}")
        sp = sub.add_parser(name, help=module.HELP, description=module.__doc__)
        sp.set_defaults(run=module.run)
        sp.add_argument("--mirror", action="append", default=[], help="mirror folder (repeatable)")
        module.add_arguments(sp)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    tags = dict(t.split("=", 1) for t in args.tag)
    if args.stage == "evaluate":
        tags.setdefault("model", args.name)
    params = {k: v for k, v in vars(args).items() if k not in ("run", "tag", "rule")}
    try:
        with stage_run(args.stage, params, rule=args.rule, tags=tags) as run:
            args.run(args, run)
    except EmbedlabError as err:  # a user's input or setting: one line; a bug: its traceback
        print(f"embedlab {args.stage}: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
