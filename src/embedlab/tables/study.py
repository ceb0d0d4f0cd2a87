"""What a study's page says beyond its score tables, read from the tracked runs: the code
versions behind its scores and the training data of each experiment. ``embedlab.page`` lays
the page out; the tables rule writes it as ``results/<experiment>/study.md``, and
``make study-*`` copies page and figures into ``docs/studies/``. Nothing in it is typed by hand.

Example::

    versions = code_versions({"b3-bs64-seed0": {"mine": ["2a03a39de35f4c14@9f7515fa7ae8"]}})
"""

from collections import Counter
from collections.abc import Mapping, Sequence

from embedlab import markdown
from embedlab.contracts import (
    REJECTED_PREFIX,
    SYNTH_ACCEPTED,
    SYNTH_ROWS,
    TAG_SYNTH_MODE,
    attempt_metric,
)


def code_versions(lineages: Mapping[str, Mapping[str, Sequence[str]]]) -> list[dict]:
    """Every code version behind a page's runs: one row per (stage, code version) with the
    commits it ran at (``+dirty`` where the package had uncommitted changes), the models whose
    runs it is behind and their count, in the stages' order. ``lineages`` maps a model to its
    evaluate run's lineage (``embedlab.provenance``); a stage with two rows is mixed."""
    from embedlab.provenance import split_entry
    from embedlab.stages import STAGES

    found: dict[tuple[str, str], dict] = {}
    for model, lineage in lineages.items():
        for stage, entries in lineage.items():
            for entry in entries:
                version, commit = split_entry(entry)
                row = found.setdefault(
                    (stage, version),
                    {"stage": stage, "version": version, "commits": set(), "models": []},
                )
                row["commits"].add(commit)
                if model not in row["models"]:
                    row["models"].append(model)
    order = {stage: i for i, stage in enumerate(STAGES)}
    rows = sorted(
        found.values(), key=lambda r: (order.get(r["stage"], 99), r["stage"], -len(r["models"]))
    )
    counts = Counter(r["stage"] for r in rows)
    for row in rows:
        row["runs"], row["mixed"] = len(row["models"]), counts[row["stage"]] > 1
    return rows


def synthesis_markdown(experiments: Sequence[str]) -> str:
    """What each experiment trained on: rows read or generated, accepted (by attempt, where rows
    were asked again), and the counts of each rejection reason over every failed attempt, from
    its newest finished synthesize run."""
    from embedlab.tables.sts import finished_runs
    from embedlab.tracking import ensure_experiment

    rows = []
    for name in experiments:
        runs = finished_runs(ensure_experiment(name), "synthesize", max_results=1)
        if not runs:
            continue
        metrics, tags = runs[0].data.metrics, runs[0].data.tags
        reasons = sorted(
            (
                (k.removeprefix(REJECTED_PREFIX), int(v))
                for k, v in metrics.items()
                if k.startswith(REJECTED_PREFIX) and v
            ),
            key=lambda kv: (-kv[1], kv[0]),  # most frequent first, ties by name
        )
        by_attempt = []  # accepted at attempt 1, 2, ... (a generating mode's rounds)
        while attempt_metric("accepted", len(by_attempt) + 1) in metrics:
            by_attempt.append(int(metrics[attempt_metric("accepted", len(by_attempt) + 1)]))
        rows.append(
            [
                name,
                tags.get(TAG_SYNTH_MODE, "?"),
                f"{metrics.get(SYNTH_ROWS, 0):.0f}",
                f"{metrics.get(SYNTH_ACCEPTED, 0):.0f}",
                " + ".join(map(str, by_attempt)) if len(by_attempt) > 1 else "–",
                _per_accepted(metrics.get("generated_tokens"), metrics.get(SYNTH_ACCEPTED)),
                ", ".join(f"{k} {v}" for k, v in reasons) or "–",
            ]
        )
    header = ["experiment", "mode", "rows", "accepted", "of which at attempt 1 + 2 + …"]
    header += ["generated tokens per accepted row", "failed attempts, by reason"]
    return markdown.table(header, rows, align="llrrlrl")


def _per_accepted(tokens: float | None, accepted: float | None) -> str:
    return f"{tokens / accepted:,.0f}" if tokens and accepted else "–"
