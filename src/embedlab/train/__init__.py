"""Training stage: a student encoder trained with InfoNCE over the mined batches, in order."""

from embedlab.train.loop import TrainConfig, train
from embedlab.train.loss import info_nce
from embedlab.train.student import build_student

__all__ = ["TrainConfig", "build_student", "info_nce", "train"]
