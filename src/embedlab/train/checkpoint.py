"""Checkpoints that a run killed at any moment resumes from exactly.

A checkpoint is a folder ``step-000120/`` holding the model, train-head, optimiser and scheduler
states, the best dev model so far, every rank's RNG states, and a fingerprint of the inputs and
config. It is written under a temporary name and renamed, so a kill leaves either the previous
checkpoint or the new one, never half of one. Only the newest checkpoint of the run is kept; one
made by other inputs or config is set aside as ``<name>.stale`` (the newest such per step) for a
look, never resumed.
"""

import logging
import random
import shutil
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from embedlab.atomic import fsync, fsync_entry
from embedlab.errors import naming_a_full_disk
from embedlab.train.distributed import world

PREFIX = "step-"
# the layout of state.pt (``TrainState``); it enters every run's fingerprint, so a checkpoint
# written in another layout is set aside like one of another run
FORMAT = 2
log = logging.getLogger(__name__)


def _barrier() -> None:
    if world()[1] > 1:
        dist.barrier()


def rng_states() -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if states["cuda"]:
        torch.cuda.set_rng_state_all(states["cuda"])


@dataclass
class Best:
    """The best dev score so far, the step that scored it, and the student's weights then."""

    score: float | None = None
    step: int | None = None
    weights: dict[str, torch.Tensor] | None = None

    def offer(self, score: float, step: int, model: torch.nn.Module) -> None:
        """Keep ``model``'s weights if ``score`` beats the best so far."""
        if self.score is None or score > self.score:
            self.score, self.step = score, step
            self.weights = {k: v.detach().clone() for k, v in model.state_dict().items()}


@dataclass
class TrainState:
    """What a checkpoint's ``state.pt`` holds (the RNG states lie beside it, one per rank):
    the state dicts of the student, the train-time head, the optimiser and the scheduler, the
    best model so far, and the fingerprint of the run it belongs to."""

    model: dict[str, Any]
    head: dict[str, Any]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    best: Best
    fingerprint: str

    def to_file(self) -> dict[str, Any]:
        """The plain mapping ``torch.save`` writes (no class of embedlab inside the file)."""
        return {f.name: getattr(self, f.name) for f in fields(self)} | {"best": vars(self.best)}

    @classmethod
    def from_file(cls, saved: dict[str, Any]) -> "TrainState":
        return cls(**(saved | {"best": Best(**saved["best"])}))


@dataclass
class Checkpoint:
    step: int  # optimiser steps done
    state: TrainState
    rng: dict[str, Any]


def save(folder: Path, step: int, state: TrainState) -> Path:
    """Write checkpoint ``step`` atomically (every rank calls this; rank 0 writes the shared
    state, each rank its RNG states), then delete older checkpoints."""
    rank, _ = world()
    final = folder / f"{PREFIX}{step:06d}"
    tmp = folder / f".{PREFIX}{step:06d}.tmp"
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    _barrier()
    resume = "training resumes from the last whole checkpoint"
    with naming_a_full_disk(folder, f"checkpoint {step}", resume):
        torch.save(rng_states(), tmp / f"rng-{rank}.pt")
        if rank == 0:
            torch.save(state.to_file(), tmp / "state.pt")
    _barrier()
    if rank == 0:
        fsync(tmp)  # a renamed but empty state.pt after a power cut would resume nothing
        tmp.rename(final)
        fsync_entry(folder)  # the rename itself
        for old in folder.glob(f"{PREFIX}*"):
            if old != final and not old.name.endswith(".stale"):
                shutil.rmtree(old, ignore_errors=True)
    _barrier()
    return final


def latest(folder: Path | None, fingerprint: str) -> Checkpoint | None:
    """The newest complete checkpoint of this run (same fingerprint), or None.

    A checkpoint of other inputs, another config or another student is not resumed (that would
    silently mix two experiments): rank 0 renames it to ``<name>.stale`` (replacing an older
    one of that name) and logs a warning, and training starts afresh.
    """
    if folder is None or not folder.exists():
        return None
    found = sorted(p for p in folder.glob(f"{PREFIX}*") if not p.name.endswith(".stale"))
    if not found:
        return None
    path = found[-1]
    rank, _ = world()
    state = torch.load(path / "state.pt", map_location="cpu", weights_only=False)
    if state.get("fingerprint") != fingerprint:
        log.warning(
            "%s: checkpoint of other inputs or config; kept as .stale, starting afresh", path
        )
        _barrier()
        if rank == 0:  # only the newest set-aside checkpoint of a step is kept
            stale = path.with_name(path.name + ".stale")
            shutil.rmtree(stale, ignore_errors=True)
            path.rename(stale)
        _barrier()
        return None
    rng = torch.load(path / f"rng-{rank}.pt", map_location="cpu", weights_only=False)
    return Checkpoint(int(path.name.removeprefix(PREFIX)), TrainState.from_file(state), rng)
