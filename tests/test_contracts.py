"""Every name one stage writes and another reads (``embedlab.contracts``), written by the writer
and read back by the reader: a renamed metric, tag or label fails here, not on a study page."""

import os

import numpy as np
import pytest

from embedlab import schemas
from embedlab.cli import main
from embedlab.contracts import FALSE_NEGATIVES
from embedlab.tracking import ensure_experiment, stage_run

from .test_import_gold import snli_file


def test_synthesis_counts_mode_and_source_reach_the_study_page(tmp_path):
    from embedlab.tables.sts import synthesis_source
    from embedlab.tables.study import synthesis_markdown

    out = tmp_path / "synth"
    code = main(
        [
            "synthesize",
            "--mode",
            "import",
            "--import-path",
            str(snli_file(tmp_path / "snli.txt")),
            "--pairs-out",
            str(out / "pairs.parquet"),
            "--rejected-out",
            str(out / "rejected.parquet"),
            "--teacher-margin",
            "none",
        ]
    )
    assert code == 0
    pairs = schemas.read(out / "pairs.parquet", schemas.Pairs)
    rejected = schemas.read(out / "rejected.parquet", schemas.Rejected)
    reasons = rejected.group_by("reason").len().sort("len", "reason", descending=[True, False])
    expected = ", ".join(f"{r} {n}" for r, n in reasons.iter_rows())
    total = pairs.height + rejected.height
    row = f"| test | import | {total} | {pairs.height} | – | – | {expected} |"
    assert row in synthesis_markdown(["test"])
    assert synthesis_source(ensure_experiment("test")) == "import/snli.txt"


def test_rows_accepted_at_each_attempt_reach_the_study_page(tmp_path):
    """The synthesize stage asking rejected rows again (a scripted server whose sampled hard
    negatives are usable): rows, accepted, accepted per attempt and the failed attempts'
    reasons as the page shows them."""
    from embedlab.tables.study import synthesis_markdown

    from .chat_server import ChatServer
    from .test_synth_generate import ANSWERS, corpus_of, pool_file, scripted_by_request

    schemas.write(corpus_of(list(ANSWERS)), tmp_path / "corpus.parquet", schemas.Corpus)
    with ChatServer(scripted_by_request, whole_request=True) as server:
        code = main(
            [
                "synthesize", "--corpus", str(tmp_path / "corpus.parquet"),
                "--prompt", pool_file(tmp_path), "--backend", "openai",
                "--openai-base-url", server.url, "--openai-api-key-env", "none",
                "--model", "scripted", "--n-anchors", "6", "--batch-size", "4",
                "--max-attempts", "2", "--teacher-margin", "none",
                "--pairs-out", str(tmp_path / "pairs.parquet"),
                "--rejected-out", str(tmp_path / "rejected.parquet"),
            ]
        )  # fmt: skip
    assert code == 0
    reasons = "duplicate 2, negative_copies_anchor 2, not_text 2"  # over all failed attempts
    # the server counts the words of an answer as its tokens
    words = sum(len(scripted_by_request(r["body"]).split()) for r in server.requests)
    row = f"| test | partial | 6 | 4 | 2 + 2 | {words / 4:,.0f} | {reasons} |"
    assert row in synthesis_markdown(["test"])


def test_mining_figures_reach_the_mining_table(monkeypatch):
    from embedlab.mine.diagnostics import summarize
    from embedlab.tables.mining import FIGURES, fetch_mining

    rng = np.random.default_rng(0)
    anchor = rng.normal(size=(8, 4))
    anchor /= np.linalg.norm(anchor, axis=1, keepdims=True)
    epochs, baseline = [[[0, 1, 2, 3], [4, 5, 6, 7]]], [[[0, 2, 4, 6], [1, 3, 5, 7]]]
    sim, base = rng.uniform(size=12), rng.uniform(size=12)
    figures = summarize(anchor, anchor, list("abcdefgh"), epochs, baseline, sim, base)
    tags = {"miner": "b3", "bs": "4", "seed": "0"}
    with stage_run("mine", {}, tags=tags) as run:
        run.log_metrics(figures)
    table = fetch_mining()
    assert table.height == 1 and table["miner"][0] == "b3"
    for metric, column in FIGURES.items():
        assert table[column][0] == pytest.approx(figures[metric]), metric
    # a study of several experiments (data sets, arms): each one's batches keep their own row
    first = os.environ["EMBEDLAB_EXPERIMENT"]
    monkeypatch.setenv("EMBEDLAB_EXPERIMENT", "coco")
    with stage_run("mine", {}, tags=tags) as run:
        run.log_metrics(figures | {FALSE_NEGATIVES: 0.5})
    table = fetch_mining([first, "coco"])
    assert table["miner"].to_list() == [f"{first} · b3", "coco · b3"]
    assert table["false negatives"].to_list() == [figures[FALSE_NEGATIVES], 0.5]


def test_geometry_and_sts_scores_reach_the_scores_table(tmp_path, mirror):
    from embedlab.tables import fetch_scores

    model = str(tmp_path / "student-init")  # the untrained static student: quick to score
    assert main(["train", "--out", model, "--mirror", str(mirror)]) == 0
    out = tmp_path / "a.parquet"
    flags = ["--tasks", "STS16", "--geometry", "--retrieval", "--pairs"]
    args = ["evaluate", "--model", model, "--name", "a", "--out", str(out), *flags]
    assert main([*args, "--mirror", str(mirror)]) == 0
    scores = schemas.read(out, schemas.Scores)
    row = fetch_scores(["a"]).row(0, named=True)
    wrote = {(r["task"], r["metric"]): r["value"] for r in scores.iter_rows(named=True)}
    assert row["STS16"] == pytest.approx(wrote[("STS16", "spearman")])
    assert row["Avg"] == pytest.approx(wrote[("Avg", "spearman")])
    for metric in ("alignment", "uniformity"):
        assert row[metric] == pytest.approx(wrote[("STSBenchmark", metric)])


def test_rows_of_several_experiments_are_labelled_and_parsed_back_alike(monkeypatch):
    """The tables write ``<source> · <model>``; the grouped table parses the same label."""
    from embedlab.contracts import TAG_SYNTH_SOURCE
    from embedlab.settings.synthesize import SynthesizeSettings
    from embedlab.stages.synthesize import synthesis_source
    from embedlab.tables import fetch_scores
    from embedlab.tables.grouped import group

    for experiment, mode in (("one", "partial"), ("two", "query")):
        monkeypatch.setenv("EMBEDLAB_EXPERIMENT", experiment)
        with stage_run("synthesize", {}) as run:
            settings = SynthesizeSettings(mode=mode, model="org/Gen-1B")
            run.set_tag(TAG_SYNTH_SOURCE, synthesis_source(settings))
        with stage_run("evaluate", {}, tags={"model": "random-bs8-seed0"}) as run:
            run.log_metrics({"Avg.spearman": 1.0})
    scores = fetch_scores(["random-bs8-seed0"], experiments=["one", "two"])
    assert scores["model"].to_list() == [
        "partial/Gen-1B · random-bs8-seed0",
        "query/Gen-1B · random-bs8-seed0",
    ]
    assert group(scores)["group"].to_list() == [
        "partial/Gen-1B · random, B=8",
        "query/Gen-1B · random, B=8",
    ]
    # an arm with its own grid (Study 3's whole-batch b3): its runs, not the first one's grid
    monkeypatch.setenv("EMBEDLAB_EXPERIMENT", "three")
    with stage_run("synthesize", {}) as run:
        run.set_tag(TAG_SYNTH_SOURCE, "partial/Gen-1B")
    with stage_run("evaluate", {}, tags={"model": "b3-bs16-seed0"}) as run:
        run.log_metrics({"Avg.spearman": 2.0})
    scores = fetch_scores(["random-bs8-seed0"], experiments=["one", "three"])
    assert scores["model"].to_list() == ["one · random-bs8-seed0", "three · b3-bs16-seed0"]
    assert scores["Avg"].to_list() == [1.0, 2.0]
