"""The Snakemake side: dry run, lint, config validation, and the whole DAG on a tiny config."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import polars as pl
import pytest
import yaml

from embedlab import schemas
from embedlab.tables.sts import fetch_similarity_histograms

from .conftest import MIRROR, REPO, TIMEOUT_S

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def snakemake(
    *args: str, cwd: Path = REPO, timeout: int = TIMEOUT_S, env: dict | None = None
) -> subprocess.CompletedProcess:
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    env = {**os.environ, "PATH": path, **(env or {})}
    return subprocess.run(
        [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(cwd), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_default_config_dry_run():
    result = snakemake("-n", "--forceall")  # every job, whatever results/ holds
    assert result.returncode == 0, result.stderr[-3000:]
    for rule in ("corpus", "synthesize", "teacher", "mine", "train", "evaluate", "tables"):
        assert f"rule {rule}:" in result.stdout
    assert "random-bs32-seed0" in result.stdout and "b3-bs32-seed0" in result.stdout


def test_the_test_config_runs_from_the_repository_root_as_the_readme_says():
    """``.test/config.yaml`` as a user runs it (the suite's whole-DAG run is the same file with
    absolute paths): every job plans, with its own experiment and results folder."""
    result = snakemake("-n", "--forceall", "--configfile", str(TINY))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "results/.test/tiny/synth/pairs.parquet" in result.stdout
    assert "results/.test/tiny/models/b3-bs8-seed0" in result.stdout
    assert ".test/config.yaml" in (REPO / "README.md").read_text()


def test_lint_is_clean():
    result = snakemake("--lint")
    assert result.returncode == 0, result.stdout[-3000:]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"grid": {"minerz": ["b3"]}}, "'minerz' was unexpected"),
        ({"synthesize": {"n_anchors": "many"}}, "'many' is not of type 'integer'"),
        ({"grid": {"miners": ["fancy"]}}, "'fancy' is not one of"),
    ],
)
def test_bad_config_stops_at_start_naming_the_key(tmp_path, config, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake("-n", "--configfile", str(path), cwd=tmp_path)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert expected in output
    key = next(iter(next(iter(config.values()))))
    assert key in output


def test_every_schema_problem_is_listed_once_in_a_few_lines(tmp_path):
    """An unknown top-level key printed a 567-line log, mostly the schema, and named only the
    first of several problems."""
    path = tmp_path / "bad.yaml"
    bad = {"colour": "blue", "grid": {"miners": ["fancy"]}, "synthesize": {"n_anchors": "x"}}
    path.write_text(yaml.safe_dump(bad))
    result = snakemake("-n", "--configfile", str(path), cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "(3 problem(s)" in output
    for line in (
        "- (top level): Additional properties are not allowed ('colour' was unexpected)",
        "- grid.miners.0: 'fancy' is not one of",
        "- synthesize.n_anchors: 'x' is not of type 'integer'",
    ):
        assert output.count(line) == 1, line
    assert len(output.splitlines()) < 20 and "$schema" not in output


def rendered(page: Path) -> str:
    """The text ``page`` shows after headless Chromium ran its scripts, without the scripts
    and styles themselves (the Snakemake report is a JavaScript app: the raw file shows only
    "Please enable Javascript")."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("EMBEDLAB_REQUIRE_CHROMIUM") == "1":
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed: the report was built but not rendered")
    args = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=15000"]
    done = subprocess.run(
        [*args, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=TIMEOUT_S
    )
    assert done.returncode == 0, done.stderr[-2000:]
    dom = re.sub(r"<(script|style)\b.*?</\1>", "", done.stdout, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))


PREFLIGHT = {  # a config key -> what it is set to, and what the preflight must say
    "teacher.model": ("no/such-teacher", "teacher.model = 'no/such-teacher'"),
    "train.init": ("models/typo", "train.init = 'models/typo'"),
    "corpus.sources": ([{"path": "corpus/nope.txt"}], "corpus.sources[0].path = 'corpus/nope.txt'"),
    "grid.batch_sizes": ([8, 128], "grid.batch_sizes has 128 but synthesize.n_anchors = 64"),
    "mine.b3.cluster_size": (3, "mine.b3.cluster_size = 3 does not divide the batch size 8"),
    "train.pair_weights": ("score", "train.pair_weights = 'score' needs synthesize.feedback"),
}


def test_preflight_stops_a_run_before_any_job_naming_every_key(tmp_path):
    """Missing models and files, impossible sizes: one run, stopped within its first seconds
    (they used to fail minutes in, after synthesis), every problem with its key and places."""
    config = tiny_config(
        tmp_path,
        teacher={"model": "no/such-teacher"},
        train={"init": "models/typo", "pair_weights": "score"},
        corpus={"sources": [{"path": "corpus/nope.txt"}]},
        grid={"batch_sizes": [8, 128]},
        mine={"b3": {"p": 1, "m": 6, "cluster_size": 3}},
    )
    result = snakemake("--cores", "1", "--configfile", str(config), cwd=tmp_path)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "the config cannot run (7 problem(s)); nothing was started" in output
    for _, expected in PREFLIGHT.values():
        assert expected in output
    assert f"mirror {MIRROR}/corpus/nope.txt" in output  # every place that was looked in
    assert not (tmp_path / "results").exists()  # no job ran


def test_preflight_names_an_import_without_its_file(tmp_path):
    config = tiny_config(tmp_path, synthesize={"mode": "import"})
    result = snakemake("--cores", "1", "--configfile", str(config), cwd=tmp_path)
    assert result.returncode != 0 and not (tmp_path / "results").exists()
    assert "synthesize.import.path is not set" in result.stdout + result.stderr


def test_an_api_key_canary_appears_nowhere_the_pipeline_writes(tmp_path, monkeypatch):
    """Corpus and synthesis through an OpenAI-compatible server: the key is sent, and found in
    no file under results/, .snakemake/ or the MLflow store."""
    from .chat_server import ChatServer

    canary = "sk-canary-" + "5" * 24
    monkeypatch.setenv("OPENAI_API_KEY", canary)

    def answer(messages: list[dict]) -> str:  # one per role (the instruction) and anchor
        content = messages[-1]["content"]
        return f"Something on {content[:12].lower()} and {content[-30:]}"

    with ChatServer(answer) as server:
        config = tiny_config(
            tmp_path,
            synthesize={"backend": "openai", "model": "m", "openai": {"base_url": server.url}},
        )
        target = str(tmp_path / "results/tiny/synth/pairs.parquet")
        result = snakemake("--cores", "2", target, "--configfile", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert {r["auth"] for r in server.requests} == {f"Bearer {canary}"}
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "mlflow.db" for p in files) and any(".snakemake" in p.parts for p in files)
    assert [p for p in files if canary.encode() in p.read_bytes()] == []
    assert canary not in result.stdout + result.stderr


TINY = REPO / ".test/config.yaml"


def tiny_config(tmp_path: Path, **overrides: dict) -> Path:
    """``.test/config.yaml`` (the whole DAG in minutes), its paths made absolute for a run in
    ``tmp_path``; ``overrides`` update its sections."""
    config = yaml.safe_load(TINY.read_text()) | {
        "results": str(tmp_path / "results"),
        "tracking_uri": f"sqlite:///{tmp_path}/mlflow.db",
        "mirrors": [str(MIRROR)],
    }
    config["synthesize"]["prompt"] = str(REPO / "config/prompts/partial.yaml")
    config["tables"] = {"reference": str(REPO / "config/reference/sts.yaml")}
    for key, value in overrides.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


# The whole-DAG run's results folder: a space and a quote, which every rule's command line
# must carry as one argument (tests/test_injection.py tries hostile values)
TINY_RESULTS = "it's results"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """The whole DAG of the tiny config, run once for the tests that read what it made."""
    tmp_path = tmp_path_factory.mktemp("tiny")
    every_task = {"retrieval": ["stsb", "coco"], "pairs": ["sick"]}
    config = tiny_config(tmp_path, results=str(tmp_path / TINY_RESULTS), evaluate=every_task)
    first = snakemake("--cores", "2", "--configfile", str(config), cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-5000:]
    return tmp_path


@pytest.mark.slow
def test_whole_dag_on_a_tiny_config(tiny_run, monkeypatch):
    tmp_path, config = tiny_run, tiny_run / "tiny.yaml"
    out = tmp_path / TINY_RESULTS / "tiny"

    corpus = schemas.read(out / "corpus.parquet", schemas.Corpus)
    pairs = schemas.read(out / "synth/pairs.parquet", schemas.Pairs)
    rejected = schemas.read(out / "synth/rejected.parquet", schemas.Rejected)
    assert corpus.height == 300
    # every anchor accounted for: accepted at attempt 1 or 2 (max_attempts: 2), or rejected at
    # both; an anchor accepted at attempt 2 has its failed first attempt in rejected
    assert set(pairs["id"]) | set(rejected["id"]) == set(corpus.sample(64, seed=0)["id"])
    first = rejected.filter(pl.col("attempt") == 1)["id"]
    assert set(rejected.filter(pl.col("attempt") == 2)["id"]) <= set(first)
    assert set(pairs["id"]).isdisjoint(rejected.filter(pl.col("attempt") == 2)["id"])
    assert pairs.filter(pl.col("id").is_in(first.implode())).height >= 1  # a retry passed
    assert pairs.height >= 12 and "teacher_disagrees" in set(rejected["reason"])
    assert (out / "synth/samples.md").exists() and not (out / "synth/shards").exists()
    for miner in ("random", "b3"):
        batches = schemas.read(out / f"batches/{miner}-bs8-seed0.parquet", schemas.Batches)
        assert batches.group_by("epoch", "batch").len()["len"].to_list() == [8] * (
            batches.select("epoch", "batch").unique().height
        )
        assert (out / f"models/{miner}-bs8-seed0/modules.json").exists()
        assert (out / f"batches/{miner}-bs8-seed0.png").read_bytes()[:4] == b"\x89PNG"
    for model in ("teacher", "student-init", "random-bs8-seed0", "b3-bs8-seed0"):
        scores = schemas.read(out / f"eval/{model}.parquet", schemas.Scores)
        pooled = scores.filter(pl.col("metric") == "spearman")
        assert pooled["task"].to_list() == ["STS16", "STSBenchmark", "Avg"]
        assert {"spearman_wmean", "alignment", "uniformity", "ndcg_at_10"} <= set(scores["metric"])
        assert {"STSB-retrieval-test", "COCO-retrieval-test", "SICK-E-test"} <= set(scores["task"])
    table = (out / "tables/sts.md").read_text()
    assert "| teacher |" in table and "b3-bs8-seed0" in table
    assert r"\toprule" in (out / "tables/sts.tex").read_text()
    assert pl.read_csv(out / "tables/sts_grouped.csv")["group"].to_list()[-1] == "b3, B=8"
    grouped = (out / "tables/sts_grouped.md").read_text()
    assert "| b3, B=8 |" in grouped and "sup-SimCSE-BERT-base (reported" in grouped
    paired = (out / "tables/paired.md").read_text()
    assert "| b3 − random | 8 | 1 | " in paired and "| SICK-E AP |" in paired
    per_seed = pl.read_csv(out / "tables/sts.csv")  # the page's scores.csv: every task's
    assert per_seed["COCO nDCG@10"].null_count() == 0 and per_seed["SICK-E AP"].min() > 0
    study = (out / "study.md").read_text()  # the study page: tables, provenance, figures
    assert "## Training data" in study and "commit `" in study
    assert "## Beyond STS" in study and "## Paired comparisons beyond STS" in study
    assert "figures/avg_vs_batch.png" in study
    for name in ("avg_vs_batch", "alignment_uniformity", "in_batch_similarity"):
        assert (out / f"figures/{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert (out / f"figures/{name}.pdf").read_bytes()[:4] == b"%PDF"

    # one MLflow run per executed rule, tagged as README.md's "Tracking" says
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    every = mlflow.search_runs(experiment_names=["tiny"], output_format="list")
    (parent,) = [r for r in every if r.data.tags["stage"] == "pipeline"]
    runs = [r for r in every if r is not parent]  # one per job, nested under the invocation's
    assert {r.data.tags.get("mlflow.parentRunId") for r in runs} == {parent.info.run_id}
    assert parent.info.status == "FINISHED" and parent.data.params["grid.batch_sizes"] == "[8]"
    experiment = mlflow.get_experiment_by_name("tiny")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    rules = sorted(r.data.tags["rule"] for r in runs)
    assert rules == sorted(
        [
            "corpus",
            "synthesize",
            "teacher",
            "mine",
            "mine",
            "student_init",
            "train",
            "train",
            "evaluate_teacher",
            "evaluate",
            "evaluate",
            "evaluate",
            "tables",
        ]
    )
    assert len({r.data.tags["pipeline_run"] for r in runs}) == 1
    assert all(r.info.status == "FINISHED" for r in runs)
    for run in (r for r in runs if r.data.tags["rule"] == "train"):
        assert {"loss", "lr", "grad_norm", "tokens_per_s", "best_dev_spearman"} <= set(
            run.data.metrics
        )
        batches = f"{run.data.tags['wildcard.miner']}-bs8-seed0.parquet"
        inputs = {i.dataset.name for i in run.inputs.dataset_inputs}
        assert inputs == {"pairs.parquet", batches}  # the training data, as MLflow datasets
    assert not list(out.glob("checkpoints/*/step-*"))  # finished jobs clear their checkpoints
    mine_runs = [r for r in runs if r.data.tags["stage"] == "mine"]
    assert {r.data.tags["wildcard.miner"] for r in mine_runs} == {"random", "b3"}
    monkeypatch.setenv("EMBEDLAB_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setenv("EMBEDLAB_EXPERIMENT", "tiny")
    hists = fetch_similarity_histograms(["teacher", "random-bs8-seed0", "b3-bs8-seed0"])
    assert set(hists["model"]) == {"random-bs8-seed0", "b3-bs8-seed0"}  # teacher has no batches
    width = float(hists["center"][1] - hists["center"][0])
    for model in ("random-bs8-seed0", "b3-bs8-seed0"):
        h = hists.filter(pl.col("model") == model)
        assert float(h["density"].sum()) * width == pytest.approx(1.0, abs=1e-6)
    mean = {
        m: float((h["center"] * h["density"]).sum() * width) for (m,), h in hists.group_by("model")
    }
    assert mean["b3-bs8-seed0"] > mean["random-bs8-seed0"]  # B3 batches hold harder negatives
    teacher_eval = next(r for r in runs if r.data.tags["rule"] == "evaluate_teacher")
    stsb = pl.read_parquet(out / "eval/teacher.parquet").filter(pl.col("task") == "STSBenchmark")
    assert teacher_eval.data.metrics["STSBenchmark.spearman"] == pytest.approx(stsb["value"][0])

    # a second run has nothing to do
    second = snakemake("--cores", "2", "--configfile", str(config), cwd=tmp_path)
    assert second.returncode == 0
    assert "Nothing to be done" in second.stdout + second.stderr

    # same config and seed: the same batches, byte for byte
    b3 = out / "batches/b3-bs8-seed0.parquet"
    saved = b3.read_bytes()
    b3.unlink()
    again = snakemake(str(b3), "--cores", "2", "--configfile", str(config), cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert b3.read_bytes() == saved


def planned_jobs(output: str) -> dict[str, int]:
    """The "Job stats" of a dry run: rule -> jobs."""
    stats = output.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, flags=re.M)}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("file", "reruns"),
    [
        ("mine/b3.py", {"mine": 2, "train": 2, "evaluate_seeds": 2, "tables": 1, "all": 1}),
        ("tables/grouped.py", {"tables": 1, "all": 1}),
        ("train/loss.py", {"student_init": 1, "train": 2, "evaluate": 1, "evaluate_seeds": 2}),
    ],
)
def test_a_change_to_a_stages_code_reruns_that_stage_and_what_follows(
    tiny_run, tmp_path, file, reruns
):
    """The rules see their stage's code version (embedlab.provenance): a change to the miners
    reruns mining and what follows it, a change to the tables only the tables."""
    src = tmp_path / "src"
    shutil.copytree(REPO / "src/embedlab", src / "embedlab")
    with (src / "embedlab" / file).open("a") as f:
        f.write("\n\ndef a_change():\n    return 1\n")
    config = str(tiny_run / "tiny.yaml")
    env = {"PYTHONPATH": str(src)}  # the Snakefile imports the changed copy
    plan = snakemake("-n", "--configfile", config, cwd=tiny_run, env=env)
    assert plan.returncode == 0, plan.stderr[-3000:]
    expected = reruns if "all" in reruns else {**reruns, "tables": 1, "all": 1}
    assert planned_jobs(plan.stdout) == expected
    assert "Params have changed since last execution" in plan.stdout


@pytest.mark.slow
def test_the_report_embeds_the_tables_and_figures_and_a_browser_shows_them(tiny_run):
    report = tiny_run / "report.html"
    config = str(tiny_run / "tiny.yaml")
    made = snakemake("--report", str(report), "--configfile", config, cwd=tiny_run)
    assert made.returncode == 0, made.stderr[-3000:]
    raw = report.read_text()
    figures = ("avg_vs_batch.png", "alignment_uniformity.png", "in_batch_similarity.png")
    for name in ("sts_grouped.html", "paired.md", *figures):
        assert name in raw, name  # embedded in the report's data
    assert "Please enable Javascript" in raw
    shown = rendered(report)  # what the page shows once its scripts ran
    for text in ("Results", "Figures", "Tables", "every table and figure here was rebuilt"):
        assert text in shown, text


@pytest.mark.parametrize(("gpus", "setting"), [(1, "gpu"), (4, "multi-gpu")])
def test_gpu_config_launches_one_process_per_gpu(tmp_path, gpus, setting):
    config = yaml.safe_load((REPO / "config/gpu-transformer.yaml").read_text())
    config["train"]["gpus"] = gpus
    path = tmp_path / "gpu.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake("-n", "-p", "--forceall", "--configfile", str(path))
    assert result.returncode == 0, result.stderr[-3000:]
    launch = f"accelerate launch --config_file config/accelerate/{setting}.yaml"
    port = "--main_process_port $(python -m embedlab.port)"  # free on the node at launch
    assert f"{launch} --num_processes {gpus} {port} -m embedlab.cli" in result.stdout
    assert f"gpu={gpus}" in result.stdout
    assert "--student transformer" in result.stdout and "--pooling cls_mlp" in result.stdout
