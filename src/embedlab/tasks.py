"""The evaluation tasks, by the names their score rows carry, and the columns tables show.

The evaluate stage writes a row per (task, metric) and logs it as the MLflow metric
``<task>.<metric>``; the tables stage reads those metrics back into the columns below. The
names live here, once, for both (and for the settings' default task list).

Example::

    from embedlab.tasks import BEYOND_STS, STS_COLUMNS
    STS_COLUMNS["STSBenchmark"]                          # 'STS-B'
    BEYOND_STS[("COCO-retrieval-test", "ndcg_at_10")]   # 'COCO nDCG@10'
"""

# The STS tasks of SentEval's "all" protocol (their data: ``sts_data.STS_TASKS``) -> column
STS_COLUMNS: dict[str, str] = {
    "STS12": "STS12",
    "STS13": "STS13",
    "STS14": "STS14",
    "STS15": "STS15",
    "STS16": "STS16",
    "STSBenchmark": "STS-B",
    "SICKRelatedness": "SICK-R",
}
STS = tuple(STS_COLUMNS)
# the mean over the STS tasks scored: its score rows' task and its column
AVERAGE = "Avg"

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
