"""Settings of ``embedlab sweep`` (config section ``sweep``, and the student keys of ``train``)."""

from dataclasses import dataclass

from embedlab.settings import setting
from embedlab.settings.train import StudentSettings


@dataclass(frozen=True)
class SweepGrid:
    """The grid tried on STS-B dev."""

    batch_size: int = setting(64, "batch size of every trial")
    seeds: list[int] = setting([0, 1], "seeds per trial (its score is the mean)")
    epochs: list[int] = setting([2], "epochs tried")
    lr: list[float] = setting([0.003, 0.01, 0.03, 0.1], "learning rates tried")
    temperature: list[float] = setting([0.05, 0.1, 0.2], "temperatures tried")
    b3: list[dict] = setting([], "b3 option sets tried at the best optimiser setting (JSON)")
    eval_every: int = setting(10, "steps between dev scores")


@dataclass(frozen=True)
class SweepSettings(StudentSettings, SweepGrid):
    """The grid (``SweepGrid``) and the student every trial starts from: the ``train`` section's
    student, so that the sweep tunes the student that is then trained."""
