"""The evaluation tasks beyond STS, by the names their score rows carry.

The evaluate stage writes a row per (task, metric) and logs it as the MLflow metric
``<task>.<metric>``; the tables stage reads those metrics back into the columns below. The
names live here, once, for both.

Example::

    from embedlab.tasks import BEYOND_STS
    BEYOND_STS[("COCO-retrieval-test", "ndcg_at_10")]   # 'COCO nDCG@10'
"""

STSB_RETRIEVAL = "STSB-retrieval"
COCO_RETRIEVAL = "COCO-retrieval"
SICK_ENTAILMENT = "SICK-E"


def task_name(task: str, split: str) -> str:
    """The score rows' name of a task on one split: ``COCO-retrieval-test``."""
    return f"{task}-{split}"


# (task, metric) of the test split -> the column the tables show it in (x 100, higher is better)
BEYOND_STS: dict[tuple[str, str], str] = {
    (task_name(STSB_RETRIEVAL, "test"), "ndcg_at_10"): "STS-B nDCG@10",
    (task_name(COCO_RETRIEVAL, "test"), "ndcg_at_10"): "COCO nDCG@10",
    (task_name(COCO_RETRIEVAL, "test"), "recall_at_10"): "COCO R@10",
    (task_name(SICK_ENTAILMENT, "test"), "ap"): "SICK-E AP",
}
