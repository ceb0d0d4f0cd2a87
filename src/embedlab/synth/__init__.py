"""Synthesis stage: an LLM writes training pairs (partial, scratch, query) or a set is imported."""

from embedlab.synth.backends import make_backend
from embedlab.synth.filters import Filters, copy_similarity, parse_answer
from embedlab.synth.generate import SynthSettings, synthesize
from embedlab.synth.importing import import_pairs
from embedlab.synth.prompts import PromptPool

__all__ = [
    "Filters",
    "PromptPool",
    "SynthSettings",
    "copy_similarity",
    "import_pairs",
    "make_backend",
    "parse_answer",
    "synthesize",
]
