"""profiles/slurm against a real Slurm 22.05 on localhost (tests/slurm/cluster.sh).

The cluster is started for this module and stopped by PID afterwards. Without Slurm installed
the tests are skipped, unless EMBEDLAB_REQUIRE_SLURM=1 (CI sets it after installing Slurm), in
which case its absence is a failure.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import mlflow
import polars as pl
import pytest

from embedlab import schemas

from .conftest import REPO, TIMEOUT_S
from .test_workflow import SNAKEMAKE, tiny_config

CLUSTER = REPO / "tests/slurm/cluster.sh"
pytestmark = [pytest.mark.slow, pytest.mark.slurm]


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    if shutil.which("slurmctld") is None:
        if os.environ.get("EMBEDLAB_REQUIRE_SLURM") == "1":
            pytest.fail("Slurm is not installed: run tests/slurm/cluster.sh install (as root)")
        pytest.skip("Slurm is not installed (tests/slurm/cluster.sh install)")
    folder = tmp_path_factory.mktemp("slurm")
    subprocess.run([str(CLUSTER), "start", str(folder)], check=True, timeout=60)
    try:
        yield {**os.environ, "SLURM_CONF": str(folder / "slurm.conf")}
    finally:
        subprocess.run([str(CLUSTER), "stop", str(folder)], check=False, timeout=60)


def run_on_slurm(env: dict, config: Path, cwd: Path, *extra: str, timeout: int = TIMEOUT_S):
    """`snakemake --profile profiles/slurm` with this local cluster's settings, bounded in time
    (on SIGTERM Snakemake waits for running jobs, hence `timeout -k`)."""
    env = {**env, "PATH": f"{Path(SNAKEMAKE).parent}:{env['PATH']}"}
    args = ["timeout", "-k", "20", str(timeout), SNAKEMAKE, "-s", str(REPO / "Snakefile")]
    args += ["-d", str(cwd), "--profile", str(REPO / "profiles/slurm"), "--configfile", str(config)]
    args += ["--slurm-status-command", "squeue", "--slurm-no-account"]
    args += ["--slurm-init-seconds-before-status-checks", "2", "--max-threads", "2"]
    args += ["--default-resources", "slurm_partition=debug", "mem_mb=2000", "runtime=30"]
    # this node has 2 CPUs: a GPU job may not ask for the rules' 4 per GPU
    args += ["--set-resources", "train:mem_mb=3000", "synthesize:mem_mb=3000"]
    args += [
        f"{rule}:cpus_per_gpu=2" for rule in ("evaluate", "evaluate_seeds", "evaluate_teacher")
    ]
    args += ["--latency-wait", "5", *extra]
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout + 60)


def test_tiny_pipeline_runs_through_the_slurm_profile(slurm, tmp_path):
    # the evaluate jobs ask for a GPU: Slurm schedules them on the node's (fake) GPU
    config = tiny_config(tmp_path, evaluate={"gpus": 1})
    result = run_on_slurm(slurm, config, tmp_path, "--verbose")  # verbose: the sbatch calls
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    out = tmp_path / "results" / "tiny"
    for model in ("teacher", "student-init", "random-bs8-seed0", "b3-bs8-seed0"):
        scores = schemas.read(out / f"eval/{model}.parquet", schemas.Scores)
        pooled = scores.filter(pl.col("metric") == "spearman")
        assert pooled["task"].to_list() == ["STS16", "STSBenchmark", "Avg"]
    assert "| teacher |" in (out / "tables/sts.md").read_text()
    calls = re.findall(r"sbatch call: ([^\n]*)", result.stdout + result.stderr)
    gpu = [c for c in calls if "--gpus=1" in c]  # the GPU request reached sbatch itself
    assert len(gpu) == 4 and len(calls) > len(gpu)  # the evaluate jobs ask, the others not
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["tiny"], output_format="list")
    assert len(runs) == 14 and all(r.info.status == "FINISHED" for r in runs)
    assert len({r.data.tags["pipeline_run"] for r in runs}) == 1
    (parent,) = [r for r in runs if r.data.tags["stage"] == "pipeline"]
    nested = {r.data.tags.get("mlflow.parentRunId") for r in runs if r is not parent}
    assert nested == {parent.info.run_id}  # the id reached the jobs sbatch started


def test_a_failing_job_is_reported_with_its_log(slurm, tmp_path):
    """A corpus file that exists (the preflight passes) but is not UTF-8: the job fails on the
    cluster and its log reaches the user."""
    broken = tmp_path / "broken.txt"
    broken.write_bytes(b"A fine first sentence.\nCaf\xe9 au lait.\n")
    config = tiny_config(tmp_path, corpus={"sources": [{"path": str(broken)}]})
    corpus = str(tmp_path / "results/tiny/corpus.parquet")  # that job alone, not the DAG
    result = run_on_slurm(slurm, config, tmp_path, corpus)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Error in rule corpus" in output
    log = tmp_path / "results/tiny/logs/corpus.log"
    assert "broken.txt, line 2: not UTF-8" in log.read_text()
    assert "broken.txt, line 2: not UTF-8" in output  # show-failed-logs prints it
