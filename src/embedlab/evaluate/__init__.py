"""Evaluation stage: STS12-16, STS-B and SICK-R with the SentEval "all" protocol."""

from embedlab.evaluate.sts import dev_scorer, evaluate_sts
from embedlab.sts_data import STS_TASKS, StsPairs, load_sts

__all__ = ["STS_TASKS", "StsPairs", "dev_scorer", "evaluate_sts", "load_sts"]
