"""Corpus stage: unlabeled sentences from mirror or user files, deduplicated, with stable ids."""

from embedlab.corpus.build import Source, build_corpus, read_source

__all__ = ["Source", "build_corpus", "read_source"]
