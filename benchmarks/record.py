"""What every benchmark shares: alternating timed sides, medians, and one JSON record per run.

A record is the evidence behind a figure in the README: the commit, the machine, the command
that made it, the peer it was measured against, each side's runs and median, and the ratio.
``benchmarks/readme.py`` renders the README's speed section from the records in
``benchmarks/results/``, and a test fails when the two disagree.

    sides = {"embedlab": lambda: encode(...), "sentence-transformers": lambda: model.encode(...)}
    runs = alternate(sides, repeats=5, warmup=1)
    write(Record("encode", peer="sentence-transformers", unit="sentences/s", ...))
"""

import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def alternate(
    sides: Mapping[str, Callable[[], object]], repeats: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Seconds of each side, run in turn (A B A B ...), after ``warmup`` untimed rounds, so that
    a drift of the machine (heat, caches, another process) touches both sides alike."""
    for _ in range(warmup):
        for fn in sides.values():
            fn()
    runs: dict[str, list[float]] = {name: [] for name in sides}
    for i in range(repeats):
        order = list(sides) if i % 2 == 0 else list(reversed(sides))
        for name in order:
            started = time.perf_counter()
            sides[name]()
            runs[name].append(time.perf_counter() - started)
    return runs


def machine() -> str:
    """CPU model, cores, memory, and the GPU torch sees."""
    cpu = platform.processor() or platform.machine()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
    text = f"{cpu}, {os.cpu_count()} cores, {mem_kib / 2**20:.0f} GiB"
    try:
        import torch

        if torch.cuda.is_available():
            text += f", {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return text


def commit() -> str:
    """HEAD, with ``+dirty`` when tracked files differ from it (the records themselves aside:
    a run of every benchmark rewrites them one after another)."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"]
            + ["--", ":(top)", ":(top,exclude)benchmarks/results"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return done.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


@dataclass
class Record:
    """One measured comparison. ``sides`` maps a side's name to its figures: ``median`` (in
    ``unit``), ``runs`` (each repeat) and anything else worth keeping (its batch size, ...)."""

    name: str  # the file name under results/ and the README row's key
    title: str  # what was measured, in a few words
    peer: str  # the side a user would pick instead
    unit: str  # of the medians: "sentences/s", "s", "examples/s", ...
    higher_is_better: bool
    sides: dict[str, dict]
    setup: str  # data, model, sizes: what a reader needs to compare with their own case
    ratio: float = 0.0  # ours / peer in "better" terms (> 1: embedlab ahead); set by write()
    ours: str = "embedlab"
    notes: str = ""
    command: str = field(default_factory=lambda: " ".join(["python", *map(shlex.quote, sys.argv)]))
    commit: str = field(default_factory=commit)
    machine: str = field(default_factory=machine)
    date: str = field(default_factory=lambda: time.strftime("%Y-%m-%d"))


def per_second(runs: list[float], amount: float) -> dict:
    """A side timed over ``amount`` items: its runs and median as items per second."""
    rates = [amount / s for s in runs]
    return {"median": statistics.median(rates), "runs": [round(r, 3) for r in rates]}


def seconds(runs: list[float]) -> dict:
    return {"median": statistics.median(runs), "runs": [round(r, 3) for r in runs]}


def write(record: Record) -> Path:
    """Fill in the ratio and write ``results/<name>.json``; print a one-line summary."""
    ours, peer = record.sides[record.ours]["median"], record.sides[record.peer]["median"]
    record.ratio = ours / peer if record.higher_is_better else peer / ours
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{record.name}.json"
    path.write_text(json.dumps(asdict(record), indent=2, ensure_ascii=False) + "\n")
    print(
        f"{record.title}: {record.ours} {ours:.4g} {record.unit}, {record.peer} {peer:.4g}"
        f" -> {record.ratio:.2f}x  ({path})"
    )
    return path
