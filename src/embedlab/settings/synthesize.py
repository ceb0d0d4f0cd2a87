"""Settings of ``embedlab synthesize`` (config section ``synthesize``; the nested ``openai`` and
``import`` sections are the flags ``--openai-*`` and ``--import-*``). ``synth.filters.Filters``
and ``synth.generate.SynthSettings`` take their defaults from here."""

from dataclasses import dataclass
from typing import Literal

from embedlab.settings import setting
from embedlab.settings.teacher import TeacherSettings


@dataclass(frozen=True)
class OpenAIOptions:
    """How the ``openai`` backend reaches its server (``synthesize.openai``)."""

    base_url: str = setting("https://api.openai.com/v1", "OpenAI-compatible server")
    api_key_env: str | None = setting("OPENAI_API_KEY", "variable holding the API key")
    concurrency: int = setting(8, "requests in flight")
    timeout_s: float = setting(60.0, "deadline of one request, answer included (seconds)")
    max_attempts: int = setting(6, "attempts per request (timeouts, 429, 5xx, cut answers)")


@dataclass(frozen=True)
class ImportOptions:
    """Mode ``import``: a published set instead of generated pairs (``synthesize.import``)."""

    path: list[str] | None = setting(
        None, "the set's file(s), csv/tsv/txt/jsonl/json/parquet, local, in a mirror or hf://"
    )
    layout: Literal["auto", "syncse", "nli", "triplet", "snli", "coco"] = setting(
        "auto", "the file's columns (auto: from the header)"
    )
    match_corpus: bool = setting(False, "only the rows whose anchor is in the corpus sample")
    match_pairs: str | None = setting(
        None, "a pairs.parquet (another experiment's): only the rows with its anchors"
    )


@dataclass(frozen=True)
class SynthesizeSettings:
    """Everything ``embedlab synthesize`` does, by config key."""

    mode: Literal["partial", "scratch", "query", "import", "unlabeled"] = setting(
        "partial", "what is written (README: Synthesis)"
    )
    prompt: str | None = setting(None, "prompt pool YAML (none: config/prompts/<mode>.yaml)")
    backend: Literal["transformers", "llama.cpp", "openai", "vllm"] = setting(
        "transformers", "generator (README: Synthesis)"
    )
    model: str = setting("HuggingFaceTB/SmolLM2-135M-Instruct", "generator model")
    device: str | None = setting(None, "transformers backend: cpu, cuda, ... (none: cuda if any)")
    openai: OpenAIOptions = setting(OpenAIOptions(), "")
    import_: ImportOptions = setting(ImportOptions(), "")
    n_anchors: int = setting(480, "anchors (partial, query) or sentences")
    batch_size: int = setting(32, "prompts per generate call (one chunk)")
    max_new_tokens: int = setting(48, "per answer")
    max_attempts: int = setting(
        4, "asks per row: a row the filters reject is asked again, sampled, up to this (1: once)"
    )
    retry_temperature: float = setting(0.8, "sampling temperature of the asks after the first")
    retry_top_p: float = setting(0.95, "nucleus (top-p) of the asks after the first")
    copy_threshold: float = setting(0.9, "a positive this close is a copy")
    min_chars: int = setting(3, "shorter generated texts are rejected")
    max_chars: int = setting(400, "longer generated texts are rejected")
    teacher_margin: float | None = setting(
        0.0,
        "teacher cos(anchor, positive) - cos(anchor, negative) must reach it (none: no filter)",
    )
    teacher: str = setting(TeacherSettings.model, "model of the teacher-agreement filter")
    feedback: bool = setting(False, "CLAIF-style 0-5 similarity of anchor and positive (score)")
    cache_dir: str | None = setting(None, "finished tables by content, reused by reruns")
    seed: int = setting(0, "seed of sampling and of the generator")
