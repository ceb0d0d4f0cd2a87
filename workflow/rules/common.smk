# Shared helpers: result paths, the experiment grid, tracking context, argument quoting.
import hashlib
import json
import os
import shlex
import time
import uuid

R = f"{config['results']}/{config['experiment']}"
GRID = config["grid"]
RUNS = [
    f"{miner}-bs{bs}-seed{seed}"
    for miner in GRID["miners"]
    for bs in GRID["batch_sizes"]
    for seed in GRID["seeds"]
]
MODELS = ["teacher", "student-init", *RUNS]
MIRRORS = " ".join(f"--mirror {shlex.quote(m)}" for m in config["mirrors"])
TEACHER = config["teacher"]["model"].rstrip("/").split("/")[-1]

# Tracking context for every job of this invocation. Passed through the environment, not the
# command line, so that commands stay identical between invocations (no spurious reruns).
os.environ.setdefault("EMBEDLAB_TRACKING_URI", config["tracking_uri"])
os.environ.setdefault("EMBEDLAB_EXPERIMENT", config["experiment"])
os.environ.setdefault(
    "EMBEDLAB_PIPELINE_RUN", time.strftime("%Y%m%dT%H%M%S-") + uuid.uuid4().hex[:6]
)
os.environ.setdefault(
    "EMBEDLAB_CONFIG_HASH",
    hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12],
)

# Every job: torch threads = the job's threads, rule name and wildcards as MLflow tags.
EMBEDLAB = "OMP_NUM_THREADS={threads} embedlab --rule {rule} {params.tags}"


wildcard_constraints:
    miner="|".join(GRID["miners"]),
    bs=r"\d+",
    seed=r"\d+",


def tags(wildcards):
    """`--tag key=value` for each wildcard of a job (recorded on its MLflow run)."""
    return " ".join(f"--tag {k}={v}" for k, v in wildcards.items())


def json_arg(value):
    """A config value as one shell-quoted JSON argument."""
    return shlex.quote(json.dumps(value))
