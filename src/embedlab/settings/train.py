"""Settings of ``embedlab train`` (config section ``train``): the student, how it is trained,
and what its exported model card says. The sweep trains the same student (``StudentSettings``).
"""

from dataclasses import asdict, dataclass
from typing import Literal

from embedlab.settings import setting

POOLINGS = ("mean", "cls", "cls_mlp")


@dataclass(frozen=True)
class StudentSettings:
    """Which student is trained (the ``train`` config keys that ``build_student`` reads)."""

    student: Literal["static", "transformer"] = setting("static", "student kind")
    init: str = setting("sentence-transformers/all-MiniLM-L6-v2", "model the student starts from")
    pooling: Literal["mean", "cls", "cls_mlp"] | None = setting(
        None, "transformer students: None keeps a sentence-transformers model's own pooling"
    )
    static_init: Literal["teacher", "random"] = setting(
        "teacher", "static students: token table of the init model, or random"
    )
    dim: int = setting(256, "width of a random static student")
    max_length: int | None = setting(None, "transformer students: tokens per text")


@dataclass(frozen=True)
class TrainConfig:
    """How a student is trained (``embedlab.train.train``'s settings)."""

    lr: float = setting(3e-3, "peak learning rate (static student: chosen on STS-B dev)")
    weight_decay: float = setting(0.0, "AdamW weight decay")
    warmup_ratio: float = setting(0.1, "linear warm-up over this share of the steps, then decay")
    temperature: float = setting(0.2, "InfoNCE temperature")
    symmetric: bool = setting(False, "add the positive->anchor InfoNCE term")
    pair_weights: str | None = setting(None, "a Pairs column weighing each row's loss (score)")
    use_hard_negative: bool = setting(True, "each row's own hard negative enters the loss")
    max_grad_norm: float = setting(1.0, "gradient clipping norm")
    mixed_precision: Literal["no", "bf16", "fp16"] | None = setting(
        None, "None: as the accelerate config says (no on a CPU)"
    )
    chunk_size: int = setting(0, "GradCache: embed at most this many texts at once (0: off)")
    length_groups: int = setting(
        3, "transformer students: forwards per batch, texts grouped by length (1: one forward)"
    )
    checkpoint_every: int = setting(50, "steps between checkpoints (with a checkpoint folder)")
    eval_every: int = setting(10, "steps between dev scores (with a scorer), keeping the best")
    seed: int = setting(0, "seed of the initial weights and dropout")

    def as_params(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class TrainSettings(StudentSettings, TrainConfig):
    """The student (``StudentSettings``), how it is trained (``TrainConfig``) and what its
    exported model card says."""

    language: list[str] = setting(["en"], "language(s) named on the exported model's card")
    license: str = setting(
        "apache-2.0", "licence named on the card (set it to what the base model and data allow)"
    )
