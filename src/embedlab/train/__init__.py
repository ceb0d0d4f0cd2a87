"""Training stage: a student encoder trained with InfoNCE over the mined batches, in order."""

from embedlab.train.loop import TrainConfig, Trained, train
from embedlab.train.loss import info_nce
from embedlab.train.student import build_student, train_head

__all__ = ["TrainConfig", "Trained", "build_student", "info_nce", "train", "train_head"]
