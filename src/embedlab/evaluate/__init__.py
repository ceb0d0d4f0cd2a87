"""Evaluation stage: STS12-16, STS-B and SICK-R with the SentEval "all" protocol."""

from embedlab.evaluate.sts import STS_TASKS, StsPairs, evaluate_sts, load_sts

__all__ = ["STS_TASKS", "StsPairs", "evaluate_sts", "load_sts"]
