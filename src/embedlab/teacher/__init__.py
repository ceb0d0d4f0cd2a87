"""The teacher stage: embeddings of every text of the pairs by the teacher model, which the
miners rank by (``embed``); the files it writes are read through ``embedlab.embeddings``."""
