import multiprocessing

import mlflow
import pytest

from embedlab.cache import file_sha256
from embedlab.contracts import TAG_SCORES_SHA256, TAG_SYNTH_SOURCE
from embedlab.errors import NotFound
from embedlab.settings.synthesize import SynthesizeSettings
from embedlab.stages.synthesize import synthesis_source
from embedlab.tables import fetch_scores, to_latex, to_markdown
from embedlab.tracking import ensure_experiment, stage_run


def _log_eval(model: str, base: float, scores_file=None) -> None:
    keys = ["STS12", "STS13", "STS14", "STS15", "STS16", "STSBenchmark", "SICKRelatedness", "Avg"]
    with stage_run("evaluate", {"model": model}, rule="evaluate", tags={"model": model}) as run:
        run.log_metrics({f"{k}.spearman": base + i for i, k in enumerate(keys)})
        if scores_file is not None:
            run.set_tag(TAG_SCORES_SHA256, file_sha256(scores_file))


def test_stage_run_tags_params_and_hides_secrets(monkeypatch):
    monkeypatch.setenv("EMBEDLAB_PIPELINE_RUN", "pr-1")
    with stage_run(
        "mine",
        {"miner": "b3", "api_key": "sk-secret"},
        rule="mine",
        tags={"miner": "b3", "bs": "32"},
    ) as run:
        run.log_metrics({"in_batch_sim_mean": 0.4})
    got = mlflow.get_run(run.run_id)
    assert got.info.status == "FINISHED"
    assert got.data.tags["pipeline_run"] == "pr-1"
    assert got.data.tags["stage"] == "mine" and got.data.tags["rule"] == "mine"
    assert got.data.tags["wildcard.miner"] == "b3" and got.data.tags["wildcard.bs"] == "32"
    assert "version.torch" in got.data.tags and "mlflow.source.git.commit" in got.data.tags
    assert got.data.params["miner"] == "b3" and "api_key" not in got.data.params
    assert got.data.metrics["in_batch_sim_mean"] == 0.4


def test_failed_stage_is_marked_failed():
    with pytest.raises(RuntimeError), stage_run("train", {}) as run:
        raise RuntimeError("boom")
    assert mlflow.get_run(run.run_id).info.status == "FAILED"


def test_tables_use_newest_finished_run_per_model():
    _log_eval("teacher", 70.0)
    _log_eval("b3-bs32-seed0", 50.0)
    _log_eval("b3-bs32-seed0", 60.0)  # a rerun: the newest counts
    scores = fetch_scores(["teacher", "b3-bs32-seed0"])
    assert scores["model"].to_list() == ["teacher", "b3-bs32-seed0"]
    assert scores["STS12"].to_list() == [70.0, 60.0]
    md = to_markdown(scores)
    assert "| teacher | **70.00** |" in md and "STS-B" in md
    tex = to_latex(scores)
    assert r"\toprule" in tex and r"b3-bs32-seed0 & 60.00" in tex and r"\textbf{77.00}" in tex


def test_tables_read_the_run_that_wrote_their_input_file_not_the_newest(tmp_path):
    ours, other = tmp_path / "ours.parquet", tmp_path / "other.parquet"
    ours.write_bytes(b"scores of this config")
    other.write_bytes(b"scores of another config")
    _log_eval("b3-bs32-seed0", 50.0, scores_file=ours)
    _log_eval("b3-bs32-seed0", 60.0, scores_file=other)  # newer, but another config's
    assert fetch_scores(["b3-bs32-seed0"])["STS12"].to_list() == [60.0]
    made = {"b3-bs32-seed0": ours}
    assert fetch_scores(["b3-bs32-seed0"], made=made)["STS12"].to_list() == [50.0]
    ours.write_bytes(b"rewritten by a run that never finished")
    with pytest.raises(NotFound, match="wrote its scores file"):
        fetch_scores(["b3-bs32-seed0"], made=made)


def test_tables_across_experiments_group_by_synthesis_source(monkeypatch):
    from embedlab.tables.grouped import comparisons, group

    for experiment, mode, base in (("syn-partial", "partial", 50.0), ("syn-query", "query", 40.0)):
        monkeypatch.setenv("EMBEDLAB_EXPERIMENT", experiment)
        with stage_run("synthesize", {}) as run:  # the tag the synthesize stage sets
            settings = SynthesizeSettings(mode=mode, model="HF/SmolLM2-135M-Instruct")
            run.set_tag(TAG_SYNTH_SOURCE, synthesis_source(settings))
        for seed, noise in ((0, 0.0), (1, 0.5)):
            _log_eval(f"random-bs32-seed{seed}", base + noise)
            _log_eval(f"b3-bs32-seed{seed}", base + 2 + noise)
    models = [f"{m}-bs32-seed{s}" for m in ("random", "b3") for s in (0, 1)]
    scores = fetch_scores(models, experiments=["syn-partial", "syn-query"])
    assert scores.height == 8
    assert "partial/SmolLM2-135M-Instruct · b3-bs32-seed1" in scores["model"].to_list()
    grouped = group(scores)
    assert grouped["group"].to_list() == [
        f"{source}/SmolLM2-135M-Instruct · {miner}, B=32"
        for source in ("partial", "query")
        for miner in ("random", "b3")
    ]
    assert grouped["n"].to_list() == [2] * 4 and grouped["STS12"].to_list() == [
        50.25,
        52.25,
        40.25,
        42.25,
    ]
    # each miner against the random of its own source, then each source against the first
    paired = comparisons(scores)
    assert [(r["a"], r["b"]) for r in paired] == [
        (f"{a}/SmolLM2-135M-Instruct · {m}", f"{b}/SmolLM2-135M-Instruct · {n}")
        for a, m, b, n in (
            ("partial", "b3", "partial", "random"),
            ("query", "b3", "query", "random"),
            ("query", "random", "partial", "random"),
            ("query", "b3", "partial", "b3"),
        )
    ]
    assert [r["diff"] for r in paired] == pytest.approx([2.0, 2.0, -10.0, -10.0])


def test_tables_name_models_without_runs():
    _log_eval("teacher", 70.0)
    with pytest.raises(NotFound, match="random-bs32-seed0"):
        fetch_scores(["teacher", "random-bs32-seed0"])


def _worker(uri: str, i: int) -> None:
    import os

    os.environ["EMBEDLAB_TRACKING_URI"] = uri
    os.environ["EMBEDLAB_EXPERIMENT"] = "test"
    with stage_run("mine", {"i": i}, tags={"worker": str(i)}) as run:
        for step in range(5):
            run.log_metrics({"x": float(step)}, step=step)


def test_concurrent_processes_log_to_one_sqlite_store(tracking):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(tracking, i)) for i in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert all(p.exitcode == 0 for p in procs)
    runs = mlflow.search_runs([ensure_experiment()], output_format="list")
    assert sorted(r.data.tags["wildcard.worker"] for r in runs) == [str(i) for i in range(8)]
    assert all(r.info.status == "FINISHED" for r in runs)
    client = mlflow.MlflowClient()
    for run in runs:  # complete: every step of every run
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "x")]
        assert sorted(steps) == [0, 1, 2, 3, 4]


def test_settings_named_like_secrets_are_kept_and_secret_values_dropped():
    with stage_run(
        "synthesize",
        {
            "max_new_tokens": 48,
            "api_key_env": "OPENAI_API_KEY",
            "hf_token": "abc",
            "note": "sk-" + "9" * 30,
            "header": "Bearer " + "x" * 20,
        },
    ) as run:
        pass
    params = mlflow.get_run(run.run_id).data.params
    assert params == {"max_new_tokens": "48", "api_key_env": "OPENAI_API_KEY"}


def test_a_run_left_running_by_a_killed_job_is_failed_when_the_job_starts_again():
    import os
    import subprocess
    import sys

    code = (
        "import os\nfrom embedlab.tracking import stage_run\n"
        "with stage_run('mine', {}, rule='mine', tags={'miner': 'b3'}):\n    os._exit(9)\n"
    )
    assert subprocess.run([sys.executable, "-c", code], env=os.environ).returncode == 9
    mlflow.set_tracking_uri(os.environ["EMBEDLAB_TRACKING_URI"])
    [dead] = mlflow.search_runs(experiment_names=["test"], output_format="list")
    assert dead.info.status == "RUNNING"  # what a kill -9 leaves
    with stage_run("mine", {}, rule="mine", tags={"miner": "b3"}):
        pass
    with stage_run("mine", {}, rule="mine", tags={"miner": "random"}):
        pass
    runs = mlflow.search_runs(experiment_names=["test"], output_format="list")
    status = {r.info.run_id: r.info.status for r in runs}
    assert status.pop(dead.info.run_id) == "FAILED"
    assert set(status.values()) == {"FINISHED"}


def test_histograms_come_back_from_the_mine_runs_table_and_runs_without_one_are_left_out():
    from embedlab.contracts import IN_BATCH_SIM_TABLE
    from embedlab.tables.sts import fetch_similarity_histograms

    table = {"low": [0.0, 0.5], "high": [0.5, 1.0], "density": [1.5, 0.5]}
    table["random_density"] = [1.0, 1.0]
    with stage_run("mine", {}, rule="mine", tags={"miner": "b3", "bs": 8, "seed": 0}) as run:
        run.log_table(table, IN_BATCH_SIM_TABLE)
    with stage_run("mine", {}, rule="mine", tags={"miner": "random", "bs": 8, "seed": 0}) as run:
        run.log_metrics({"in_batch_sim_mean": 0.1})  # no table: left out, not drawn as zeros
    got = fetch_similarity_histograms(["b3-bs8-seed0", "random-bs8-seed0", "teacher"])
    assert got["model"].to_list() == ["b3-bs8-seed0"] * 2
    assert got["center"].to_list() == [0.25, 0.75] and got["density"].to_list() == [1.5, 0.5]
    assert got["random_density"].to_list() == [1.0, 1.0] and got["bs"].to_list() == [8, 8]


def test_a_page_whose_runs_mix_code_versions_is_refused_or_marked():
    """Two students trained by different train code: the tables stop, naming the stage, the
    versions and the models, unless told to accept the mix, which the page then shows."""
    from embedlab import provenance
    from embedlab.errors import SettingError
    from embedlab.page import page as study_markdown
    from embedlab.stages.tables import _code_versions
    from embedlab.tracking import NullRun

    for seed, train_code in ((0, "aaaa@c1"), (1, "aaaa@c1"), (2, "bbbb@c2+dirty")):
        model = f"b3-bs32-seed{seed}"
        with stage_run("evaluate", {}, rule="evaluate", tags={"model": model}) as run:
            run.set_tag(f"{provenance.TAG_LINEAGE}train", train_code)
            run.log_metrics({"Avg.spearman": 50.0})
    scores = fetch_scores([f"b3-bs32-seed{s}" for s in range(3)])
    with pytest.raises(SettingError) as refused:
        _code_versions(scores, allow_mixed=False, tracker=NullRun())
    message = str(refused.value)
    assert "train aaaa: 2 run(s)" in message and "train bbbb: 1 run(s)" in message
    assert "b3-bs32-seed2" in message and "allow_mixed_versions" in message

    versions = _code_versions(scores, allow_mixed=True, tracker=NullRun())
    evaluate = provenance.stage_code_version("evaluate")
    assert [(r["stage"], r["version"], r["runs"], r["mixed"]) for r in versions] == [
        ("train", "aaaa", 2, True),
        ("train", "bbbb", 1, True),
        ("evaluate", evaluate, 3, False),
    ]
    page = study_markdown("S", {}, versions=versions)
    assert "**Mixed code versions: the runs of train" in page
    assert "| **train** | **`bbbb`** | **`c2+dirty`** | **1** |" in page


def test_a_stage_run_records_its_code_version_and_commit():
    from embedlab import provenance

    with stage_run("mine", {}) as run:
        pass
    tags = mlflow.get_run(run.run_id).data.tags
    assert tags[provenance.TAG_CODE_VERSION] == provenance.stage_code_version("mine")
    assert tags[provenance.TAG_CODE_COMMIT] == provenance.git_state()[0]
    assert tags[provenance.TAG_CODE_DIRTY] in ("true", "false")
    assert tags[f"{provenance.TAG_LINEAGE}mine"].startswith(tags[provenance.TAG_CODE_VERSION])


def test_runs_whose_process_is_gone_end_failed_at_the_next_invocation(monkeypatch):
    """A killed `snakemake` left its parent run and a job's run RUNNING forever; the next
    invocation on the host marks them FAILED, and leaves live processes' and other hosts' runs."""
    import subprocess
    import sys

    from embedlab import tracking

    experiment = ensure_experiment()  # sets the tracking URI the client then uses
    client = mlflow.MlflowClient()
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    dead = {
        tracking.TAG_HOST: __import__("socket").gethostname(),
        tracking.TAG_PID: gone.stdout.strip(),
        tracking.TAG_PROCESS_START: "1.00",
    }
    orphan = client.create_run(experiment, tags=dead, run_name="pipeline-killed").info.run_id
    elsewhere = client.create_run(
        experiment, tags={**dead, tracking.TAG_HOST: "node-17"}
    ).info.run_id
    alive = client.create_run(experiment, tags=tracking._process_tags()).info.run_id
    monkeypatch.delenv("EMBEDLAB_PARENT_RUN", raising=False)
    parent = tracking.start_pipeline_run({"grid": {"seeds": [0]}})
    status = {r: client.get_run(r).info.status for r in (orphan, elsewhere, alive, parent)}
    assert status == {orphan: "FAILED", elsewhere: "RUNNING", alive: "RUNNING", parent: "RUNNING"}
    assert "process was gone" in client.get_run(orphan).data.tags["ended_by"]


@pytest.mark.parametrize("content", [b"", b"SQLite format 3\x00" + b"\xff" * 4000])
def test_an_empty_or_damaged_tracking_store_is_refused_naming_it(tmp_path, monkeypatch, content):
    """A 0-byte mlflow.db was silently recreated (the history lost); a damaged one gave a
    26-line sqlalchemy traceback naming no file."""
    from embedlab.errors import SettingError

    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir()
    db.write_bytes(content)
    monkeypatch.setenv("EMBEDLAB_TRACKING_URI", f"sqlite:///{db}")
    with pytest.raises(SettingError) as refused:
        ensure_experiment("x")
    message = str(refused.value)
    assert str(db) in message and "\n" not in message
    assert ("empty (0 bytes)" in message) == (content == b"")
    assert db.read_bytes() == content  # left as it was
