"""``embedlab prefetch``: stage models and data for compute nodes without a network."""

import argparse
import logging
from pathlib import Path

from embedlab.errors import SettingError
from embedlab.tracking import StageRun

HELP = "stage models and data for offline compute nodes"
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="folder to stage into (then a mirror)")
    parser.add_argument(
        "--models", nargs="*", default=[], help="model ids or paths (default: none)"
    )
    parser.add_argument("--sts-tasks", nargs="*", default=[], help="STS task names (default: none)")
    parser.add_argument(
        "--data", nargs="*", default=[], help="data paths relative to a mirror (default: none)"
    )


def run(args: argparse.Namespace, tracker: StageRun) -> None:
    from embedlab.prefetch import stage
    from embedlab.sts_data import STS_TASKS

    unknown = [t for t in args.sts_tasks if t not in STS_TASKS]
    if unknown:
        raise SettingError(f"unknown STS task {unknown[0]!r}; known: {sorted(STS_TASKS)}")
    data = [STS_TASKS[t][0] for t in args.sts_tasks] + list(args.data)
    manifest = stage(args.models, data, args.out, args.mirror)
    tracker.log_metrics({"staged": len(manifest)})
    tracker.log_artifact(Path(args.out) / "manifest.json", "prefetch")
    log.info("prefetch: %d items in %s", len(manifest), args.out)
