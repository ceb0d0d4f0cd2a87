"""Settings of ``embedlab corpus`` (config section ``corpus``, and ``seed``)."""

from dataclasses import dataclass

from embedlab.settings import setting


@dataclass(frozen=True)
class CorpusSettings:
    """What ``embedlab corpus`` reads and keeps."""

    sources: list[dict] = setting(
        [{"path": "corpus/wordnet-examples.txt", "name": "wordnet"}],
        'one JSON object per source: {"path": ..., "format": ..., "column": ...} (Source)',
    )
    max_sentences: int | None = setting(5000, "sample at most this many (none: all)")
    min_chars: int = setting(12, "shorter texts are dropped")
    max_chars: int = setting(300, "longer texts are dropped")
    seed: int = setting(0, "seed of the sample")
