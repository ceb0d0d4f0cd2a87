"""Run any MTEB task on an embedlab model, through mteb's encoder protocol.

``MtebEncoder`` wraps a trained model folder (or any sentence-transformers model) so that
``mteb.evaluate`` calls embedlab's ``encode`` (length-sorted batches, L2-normalised rows) and
cosine similarity. ``mirror_sts_task`` builds an MTEB STS task from the local mirror, so the
adapter runs offline; with a network, ``mteb.get_tasks(["STS22"])`` and the like work too.

mteb is an optional dependency (``pip install embedlab[mteb]``); it is imported here only.

Example::

    import mteb
    model = MtebEncoder.load("results/default/models/b3-bs32-seed0")
    result = mteb.evaluate(model, mirror_sts_task("STSBenchmark", ["../shared/data"]), cache=None)
    result.task_results[0].get_score()  # main score (cosine Spearman, 0-1)
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from mteb.abstasks.sts import AbsTaskSTS
from mteb.abstasks.task_metadata import TaskMetadata
from mteb.models.abs_encoder import AbsEncoder
from mteb.models.model_meta import ModelMeta
from sentence_transformers import SentenceTransformer

from embedlab.encode import encode, load_encoder
from embedlab.sts_data import STS_TASKS, load_sts


class MtebEncoder(AbsEncoder):
    """An embedlab/sentence-transformers model seen through mteb's ``EncoderProtocol``."""

    def __init__(self, model: SentenceTransformer, name: str, batch_size: int = 64) -> None:
        self.model = model
        self.batch_size = batch_size
        self.mteb_model_meta = ModelMeta(
            loader=None,
            name=f"embedlab/{Path(name).name}",
            revision="local",
            release_date=None,
            languages=None,
            n_parameters=sum(p.numel() for p in model.parameters()),
            memory_usage_mb=None,
            max_tokens=model.max_seq_length,
            embed_dim=model.get_embedding_dimension(),
            license=None,
            open_weights=True,
            public_training_code=None,
            public_training_data=None,
            framework=["Sentence Transformers", "PyTorch"],
            similarity_fn_name="cosine",
            use_instructions=False,
            training_datasets=None,
        )

    @classmethod
    def load(cls, name: str, mirrors: Sequence[str] = (), batch_size: int = 64) -> "MtebEncoder":
        """Load a model folder or public id (resolved offline first, as every stage does)."""
        return cls(load_encoder(name, mirrors), name, batch_size)

    def encode(self, inputs: Any, *, task_metadata: TaskMetadata, **kwargs: Any) -> np.ndarray:
        texts = [text for batch in inputs for text in batch["text"]]
        return encode(self.model, texts, batch_size=self.batch_size)

    def similarity(self, embeddings1: Any, embeddings2: Any) -> torch.Tensor:
        a = torch.nn.functional.normalize(torch.as_tensor(embeddings1, dtype=torch.float32), dim=-1)
        b = torch.nn.functional.normalize(torch.as_tensor(embeddings2, dtype=torch.float32), dim=-1)
        return a @ b.T

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> torch.Tensor:
        a = torch.nn.functional.normalize(torch.as_tensor(embeddings1, dtype=torch.float32), dim=-1)
        b = torch.nn.functional.normalize(torch.as_tensor(embeddings2, dtype=torch.float32), dim=-1)
        return (a * b).sum(-1)


def mirror_sts_task(task: str, mirrors: Sequence[str | Path], split: str = "test") -> AbsTaskSTS:
    """An MTEB STS task whose pairs come from the local mirror (one of ``STS_TASKS``)."""
    from datasets import Dataset, DatasetDict

    pairs = load_sts(task, mirrors, split=split)
    hi = 5.0  # every STS file of the mirror is scored 0-5 (SICK 1-5)

    class MirrorSTS(AbsTaskSTS):
        metadata = TaskMetadata(
            name=f"embedlab-mirror-{task}",
            description=f"{task} {split} split read from a local mirror by embedlab",
            reference=None,
            dataset={"path": STS_TASKS[task][1], "revision": "local-mirror"},
            type="STS",
            category="t2t",
            modalities=["text"],
            eval_splits=[split],
            eval_langs=["eng-Latn"],
            main_score="cosine_spearman",
            date=None,
            domains=None,
            task_subtypes=None,
            license=None,
            annotations_creators=None,
            dialect=None,
            sample_creation=None,
            bibtex_citation="",
        )
        min_score = 0
        max_score = hi

        def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
            data = {"sentence1": pairs.s1, "sentence2": pairs.s2, "score": pairs.gold.tolist()}
            self.dataset = DatasetDict({split: Dataset.from_dict(data)})
            self.data_loaded = True

    return MirrorSTS()


def evaluate_mteb(
    model: SentenceTransformer,
    names: Sequence[str],
    mirrors: Sequence[str | Path] = (),
    batch_size: int = 64,
) -> pl.DataFrame:
    """Main score x 100 of each MTEB task, as rows of the ``Scores`` schema.

    A name ``mirror:<STS task>`` (for example ``mirror:STSBenchmark``) is built from the local
    mirror; any other name is looked up with ``mteb.get_tasks`` (its data comes from the hub).
    """
    import mteb

    from embedlab.schemas import Scores, polars_schema

    encoder = MtebEncoder(model, "model", batch_size)
    rows = []
    for name in names:
        if name.startswith("mirror:"):
            task = mirror_sts_task(name.removeprefix("mirror:"), mirrors)
        else:
            task = mteb.get_tasks(tasks=[name])[0]
        result = mteb.evaluate(encoder, task, cache=None, show_progress_bar=False)
        for res in result.task_results:
            for split, per_subset in res.scores.items():
                for entry in per_subset:
                    rows.append(
                        {
                            "task": f"mteb:{name}",
                            "split": split,
                            "metric": task.metadata.main_score,
                            "value": float(entry["main_score"]) * 100,
                            "n": int(entry.get("num_samples", 0) or 0),
                        }
                    )
    return pl.DataFrame(rows, schema=polars_schema(Scores))
