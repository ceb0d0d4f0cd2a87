"""Settings of ``embedlab mine`` (config section ``mine``; the rule adds the grid's miner, batch
size and seeds)."""

from dataclasses import dataclass

from embedlab.settings import setting


@dataclass(frozen=True)
class MineSettings:
    """Which miner builds the batches of one grid cell, and over which pairs."""

    miner: str = setting(help="random, b3, kmeans or hardneg")
    batch_size: int = setting(help="examples per batch")
    epochs: int = setting(4, "passes over the pairs, each mined afresh")
    seed: list[int] = setting([0], "seeds of the miner: one batch file (and plot) each")
    options: dict = setting({}, "JSON object of the miner's options (b3: p, m, cluster_size)")
    subsample: float = setting(
        1.0, "share of the pairs a seed's batches draw from; the draw depends on the seed only"
    )
