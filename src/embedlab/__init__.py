"""embedlab: a reproducible pipeline for training contrastive text-embedding models.

Stages (each a subpackage, each runnable as ``embedlab <stage>``):
corpus -> synth -> mine -> train -> evaluate -> tables.
"""

__version__ = "0.1.0"
