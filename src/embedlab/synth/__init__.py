"""Synthesis stage: an LLM writes a positive and a hard negative for each anchor sentence."""

from embedlab.synth.filters import copy_similarity, first_sentence
from embedlab.synth.generate import PromptTemplate, synthesize

__all__ = ["PromptTemplate", "copy_similarity", "first_sentence", "synthesize"]
