"""Settings of ``embedlab evaluate`` (config section ``evaluate``)."""

from dataclasses import dataclass

from embedlab.settings import setting
from embedlab.tasks import STS


@dataclass(frozen=True)
class EvaluateSettings:
    """Which tasks a model is scored on, and how."""

    tasks: list[str] = setting(list(STS), "STS tasks (test splits)")
    batch_size: int = setting(64, "texts per forward pass")
    geometry: bool = setting(True, "alignment and uniformity on STS-B dev (SimCSE's)")
    retrieval: list[str] = setting(
        ["stsb", "coco"],
        "retrieval tasks: 'stsb', 'coco' (built from the mirror) or BEIR-layout folders",
    )
    pairs: list[str] = setting(["sick"], "pair classification: 'sick' (SICK-E test, AP)")
    mteb: list[str] = setting(
        [], "MTEB task names (needs mteb; data from the hub) or mirror:<STS task> (offline)"
    )
    cache_dir: str | None = setting(None, "scores by content, reused")
