# Shared helpers: result paths, the experiment grid, tracking context, CLI arguments from config.
import hashlib
import json
import os
import shlex
import time
import uuid
from pathlib import Path

from embedlab.contracts import RUN_NAME
from embedlab.preflight import check_env_name, uses_corpus
from embedlab.provenance import stage_code_version
from embedlab.resolve import is_remote
from embedlab.settings import config_flags
from embedlab.settings.corpus import CorpusSettings
from embedlab.settings.evaluate import EvaluateSettings
from embedlab.settings.mine import MineSettings
from embedlab.settings.sweep import SweepSettings
from embedlab.settings.synthesize import SynthesizeSettings
from embedlab.settings.tables import TablesSettings
from embedlab.settings.teacher import TeacherSettings
from embedlab.settings.train import TrainSettings

# a key pasted where its variable's name belongs stops here, unprinted, before any command
check_env_name(
    "synthesize.openai.api_key_env", config["synthesize"]["openai"]["api_key_env"]
)

R = f"{config['results']}/{config['experiment']}"
GRID = config["grid"]
RUNS = [
    RUN_NAME.format(miner=miner, bs=bs, seed=seed)
    for miner in GRID["miners"]
    for bs in GRID["batch_sizes"]
    for seed in GRID["seeds"]
]
MODELS = ["teacher", "student-init", *RUNS]
TEACHER = Path(config["teacher"]["model"]).name
N = config["synthesize"][
    "n_anchors"
]  # examples that the stages after synthesis see, at most

# With prefetch enabled, every model and data file is staged on the submit node first, and the
# staging folder is the first mirror of every job (compute nodes often have no network).
PREFETCH = config["prefetch"]
MIRRORS = (
    [PREFETCH["folder"], *config["mirrors"]]
    if PREFETCH["enabled"]
    else config["mirrors"]
)
STAGED = [f"{PREFETCH['folder']}/manifest.json"] if PREFETCH["enabled"] else []

# Tracking context for every job of this invocation. Passed through the environment, not the
# command line, so that commands stay identical between invocations (no spurious reruns).
# The config decides where runs go; a wrapper may set EMBEDLAB_PIPELINE_RUN itself.
os.environ.update(
    EMBEDLAB_TRACKING_URI=config["tracking_uri"],
    EMBEDLAB_EXPERIMENT=config["experiment"],
)
os.environ.setdefault(
    "EMBEDLAB_PIPELINE_RUN", time.strftime("%Y%m%dT%H%M%S-") + uuid.uuid4().hex[:6]
)
os.environ.setdefault(
    "EMBEDLAB_CONFIG_HASH",
    hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12],
)


# Jobs rerun when their stage's code changes: each has the stage's code version
# (embedlab.provenance, a hash of the modules `embedlab <stage>` imports) as its parameter
# `code`, and Snakemake reruns a job whose parameters changed, and what follows from it.
# `--rerun-triggers mtime input` opts out, at the cost of results made by older code.

# Config values are data, never code: every value a shell command holds is one argument.
# Options are built as lists of arguments and every placeholder in a rule's shell command
# ends in `:q` (Snakemake quotes each element of a list); tests/test_injection.py holds
# every rule to it and runs each command with a hostile value in every string config key.


def track(name, **fixed):
    """CLI options that tag a job's MLflow run with its rule name and wildcards."""

    def args(wildcards):
        tags = {**fixed, **dict(wildcards.items())}
        return ["--rule", name, *(f"--tag={k}={v}" for k, v in tags.items())]

    return args


def cli_args(settings, *sections, cache=None, **values):
    """The flags of a stage's settings dataclass that the config sections hold (`n_anchors: 3`
    is `--n-anchors 3`, see embedlab.settings.config_flags), after the mirrors, as a list of
    arguments. Keys that are not settings of the stage (`gpus`, `runtime`) are not passed. A
    `cache_dir` left null is <results>/cache/<cache>."""
    if cache and sections[0].get("cache_dir") is None:
        values["cache_dir"] = f"{config['results']}/cache/{cache}"
    return [f"--mirror={m}" for m in MIRRORS] + config_flags(
        settings, *sections, **values
    )


def conda_env(gpus):
    """The job's environment under `--sdm conda` (envs/render.py writes both): PyPI's CUDA build
    of torch for a job that asks for GPUs, the CPU build otherwise."""
    return f"../../envs/embedlab{'-cuda' if gpus else ''}.yaml"


def launcher(gpus):
    """The command that starts training jobs. On a CPU that is `embedlab` itself; with GPUs,
    `accelerate launch` with one process per GPU (config/accelerate/<train.accelerate>.yaml).
    """
    setting = config["train"].get("accelerate")
    if gpus == 0 and setting is None:
        return "embedlab"
    setting = setting or ("gpu" if gpus == 1 else "multi-gpu" if gpus > 1 else "cpu")
    processes = max(gpus, 1)
    # a port free on the node at launch time: concurrent jobs on one node must not collide;
    # the one shell expansion a rule makes on purpose, beside a quoted config value
    return (
        f"accelerate launch --config_file {shlex.quote(f'config/accelerate/{setting}.yaml')}"
        f" --num_processes {processes} --main_process_port $(python -m embedlab.port)"
        " -m embedlab.cli"
    )


SYNTH = config["synthesize"]
# the prompt pool of a generating mode (an input of the synthesize rule)
PROMPT = (
    SYNTH["prompt"] or f"config/prompts/{SYNTH['mode']}.yaml"
    if SYNTH["mode"] not in ("import", "unlabeled")
    else None
)


IMPORTED = SYNTH["import"]["path"]
IMPORTED = [IMPORTED] if isinstance(IMPORTED, str) else IMPORTED or []


def local_file(name):
    """A data file named in the config as Snakemake sees it: the local path or its copy in a
    mirror; a remote one (hf://) is not a file input and is read by the job."""
    if is_remote(name):
        return None
    for folder in ["", *MIRRORS]:
        if os.path.exists(os.path.join(folder, name)):
            return os.path.join(folder, name)
    return name  # missing: Snakemake names it


def synth_inputs(wildcards):
    """The corpus (partial, query, import matched to it), the prompt pool (all but import) or
    the imported files."""
    inputs = {"staged": STAGED}
    if uses_corpus(SYNTH):
        inputs["corpus"] = rules.corpus.output[0]
    if SYNTH["mode"] == "import":
        inputs["imported"] = [f for f in map(local_file, IMPORTED) if f]
        if SYNTH["import"]["match_pairs"]:
            inputs["match_pairs"] = SYNTH["import"]["match_pairs"]
    elif PROMPT:
        inputs["prompt"] = PROMPT
    return inputs


def synth_args(wildcards, input):
    """The corpus as a CLI option, when the mode reads it."""
    return ["--corpus", input.corpus] if "corpus" in input.keys() else []
