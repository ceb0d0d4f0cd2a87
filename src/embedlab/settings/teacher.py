"""Settings of ``embedlab teacher`` (config section ``teacher``)."""

from dataclasses import dataclass
from typing import Literal

from embedlab.settings import setting


@dataclass(frozen=True)
class TeacherSettings:
    """The model that ranks examples for mining, and how its embeddings are stored."""

    model: str = setting("sentence-transformers/all-MiniLM-L6-v2", "teacher encoder")
    batch_size: int = setting(64, "texts per forward pass")
    dtype: Literal["float16", "float32"] = setting("float32", "dtype of the stored embeddings")
    cache_dir: str | None = setting(None, "embeddings of identical texts stored and reused here")
