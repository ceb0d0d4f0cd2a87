"""Corpus stage: unlabeled sentences from mirror or user files, deduplicated, with stable ids."""

from embedlab.corpus.build import CorpusSettings, Source, build_corpus, read_source

__all__ = ["CorpusSettings", "Source", "build_corpus", "read_source"]
