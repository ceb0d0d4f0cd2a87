"""MLflow tracking: one run per executed stage, tagged so tables can be rebuilt from runs alone.

The context (tracking URI, experiment, pipeline run id, config hash) comes from environment
variables that the Snakefile sets once per invocation, so that shell commands stay identical
between invocations and Snakemake does not see them as changed code:

    EMBEDLAB_TRACKING_URI   default sqlite:///results/mlflow.db
    EMBEDLAB_EXPERIMENT     default "default" (the config's default)
    EMBEDLAB_PIPELINE_RUN   id shared by all rules of one `snakemake` invocation
    EMBEDLAB_PARENT_RUN     the MLflow run of that invocation; stage runs nest under it
    EMBEDLAB_CONFIG_HASH    hash of the resolved config

The experiment is tagged for MLflow's model-training view, and each stage run carries the
commit in ``mlflow.source.git.commit``.

Example::

    with stage_run("mine", params={"miner": "b3"}, rule="mine", tags={"miner": "b3"}) as run:
        run.log_metrics({"hardness_mean": 0.41})
"""

import contextlib
import fcntl
import importlib.metadata
import os
import random
import re
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from embedlab import provenance
from embedlab.contracts import (
    TAG_CONFIG_HASH,
    TAG_PIPELINE_RUN,
    TAG_RESOLVED,
    TAG_RULE,
    TAG_STAGE,
    wildcard_tag,
)
from embedlab.errors import SettingError

# a parameter is left out when its name is a secret's (api_key, hf_token; not max_new_tokens or
# api_key_env, which name settings) or its value looks like a credential
SECRET_NAME = re.compile(r"(^|[_.-])(api[_-]?key|key|token|secret|password|passwd|credentials?)$")
SECRET_VALUE = re.compile(r"^(Bearer\s|sk-|hf_|ghp_|github_pat_|xox[abp]-|AKIA)\S{8,}")
VERSIONED = ("torch", "transformers", "sentence-transformers", "mlflow", "polars", "snakemake")


DEFAULT_TRACKING_URI = "sqlite:///results/mlflow.db"  # the config's defaults (a test holds
DEFAULT_EXPERIMENT = "default"  # them to the schema's): a stage run by hand logs where the
# pipeline does
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}  # the UI's training view


def tracking_uri() -> str:
    return os.environ.get("EMBEDLAB_TRACKING_URI", DEFAULT_TRACKING_URI)


def experiment_name() -> str:
    return os.environ.get("EMBEDLAB_EXPERIMENT", DEFAULT_EXPERIMENT)


def _sqlite_path(uri: str) -> Path | None:
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def retry(fn, *args, attempts: int = 8, base: float = 0.2, **kwargs):
    """Call ``fn``, retrying with exponential backoff and jitter while the store is locked.

    SQLite answers "database is locked" when several jobs write at once.
    """
    for attempt in range(attempts):
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # mlflow wraps sqlite errors in several exception types
            if attempt == attempts - 1 or "locked" not in str(err).lower():
                raise
            time.sleep(base * 2**attempt * (1 + random.random()))
    raise AssertionError("unreachable")


@contextlib.contextmanager
def _lock(uri: str) -> Iterator[None]:
    """Serialise schema creation and experiment creation on one SQLite file across processes."""
    db = _sqlite_path(uri)
    if db is None:
        yield
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_experiment(name: str | None = None, uri: str | None = None) -> str:
    """Create the tracking store and experiment if needed; return the experiment id."""
    import mlflow

    uri, name = uri or tracking_uri(), name or experiment_name()
    db = _sqlite_path(uri)
    if db is not None and db.is_file() and db.stat().st_size == 0:
        raise SettingError(
            f"the tracking store {db} is empty (0 bytes): the run history it held is gone. "
            "MLflow would make a new store there without a word; move the file away to start "
            "one, or restore it from a copy"
        )
    mlflow.set_tracking_uri(uri)
    with _lock(uri):
        try:
            client = mlflow.MlflowClient()
            found = retry(client.get_experiment_by_name, name)
        except Exception as err:  # sqlalchemy's and MLflow's errors alike: a damaged store
            detail = next((line for line in str(err).splitlines() if line.strip()), repr(err))
            raise SettingError(
                f"the tracking store {db or uri} cannot be read ({detail[:300]}); restore it "
                "from a copy, or move it away to start a new one"
            ) from None
        if found is not None:
            return found.experiment_id
        artifacts = (db.parent / "mlartifacts").resolve().as_uri() if db else None
        return retry(
            client.create_experiment, name, artifact_location=artifacts, tags=EXPERIMENT_KIND
        )


def _public(params: Mapping[str, Any]) -> dict[str, str]:
    """Params as MLflow strings, with anything that looks like a secret left out."""
    return {
        k: str(v)[:6000]
        for k, v in params.items()
        if v is not None and not SECRET_NAME.search(k.lower()) and not SECRET_VALUE.match(str(v))
    }


class StageRun:
    """Thin handle over the active MLflow run, retrying writes that SQLite may refuse.

    Metrics are buffered and written in batches (every ``flush_s`` seconds, every 1000 values,
    and when the run ends): a training loop logging every step would otherwise spend more time
    in SQLite than in training.
    """

    def __init__(self, run_id: str, flush_s: float = 5.0):
        self.run_id = run_id
        self.flush_s = flush_s
        self._buffer: list = []
        self._flushed = time.monotonic()

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._buffer += [
            Metric(k, float(v), now, step or 0) for k, v in metrics.items() if v is not None
        ]
        if len(self._buffer) >= 1000 or time.monotonic() - self._flushed > self.flush_s:
            self.flush()

    def flush(self) -> None:
        import mlflow

        while self._buffer:
            chunk, self._buffer = self._buffer[:1000], self._buffer[1000:]
            retry(mlflow.MlflowClient().log_batch, self.run_id, metrics=chunk)
        self._flushed = time.monotonic()

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        import mlflow

        retry(mlflow.log_artifact, str(path), artifact_path)

    def set_tag(self, key: str, value: str) -> None:
        import mlflow

        retry(mlflow.set_tag, key, value)

    def log_input(self, table: Any, path: str | Path, context: str) -> None:
        """A polars table read from ``path`` as the run's input dataset (name, digest, schema
        and source in the UI's Datasets column; the rows are not copied)."""
        import mlflow

        dataset = mlflow.data.from_polars(
            table, source=str(Path(path).resolve()), name=Path(path).name
        )
        retry(mlflow.log_input, dataset, context=context)

    def log_table(self, data: Mapping[str, list], artifact_file: str) -> None:
        """Columns of equal length as an MLflow table (shown in the UI, read by ``load_table``)."""
        import mlflow

        retry(mlflow.log_table, dict(data), artifact_file, run_id=self.run_id)


class NullRun(StageRun):
    """The run handle of processes other than rank 0: it records nothing."""

    def __init__(self) -> None:
        super().__init__("")

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        pass

    def flush(self) -> None:
        pass

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        pass

    def set_tag(self, key: str, value: str) -> None:
        pass

    def log_table(self, data: Mapping[str, list], artifact_file: str) -> None:
        pass

    def log_input(self, table: Any, path: str | Path, context: str) -> None:
        pass


def _fail_dead_runs(experiment_id: str, name: str) -> None:
    """Mark FAILED the RUNNING runs of this job left by a process that died (``kill -9``, a
    cluster's time limit): the job is starting again, so no earlier attempt of it is alive
    (Snakemake runs one job once at a time)."""
    import mlflow

    client = mlflow.MlflowClient()
    query = f"attributes.run_name = '{name}' and attributes.status = 'RUNNING'"
    for run in retry(client.search_runs, [experiment_id], query):
        retry(client.set_tag, run.info.run_id, "ended_by", "a later attempt of the same job")
        retry(client.set_terminated, run.info.run_id, "FAILED")


# The process that owns a run: a later invocation on the same host fails the RUNNING runs
# whose process is gone (a killed `snakemake`, a job that never reran).
TAG_HOST, TAG_PID, TAG_PROCESS_START = "process.host", "process.pid", "process.start"


def _process_tags() -> dict[str, str]:
    import psutil

    me = psutil.Process()
    return {
        TAG_HOST: socket.gethostname(),
        TAG_PID: str(me.pid),
        TAG_PROCESS_START: f"{me.create_time():.2f}",
    }


def _process_alive(tags: Mapping[str, str]) -> bool:
    """Whether the process a run's tags name still runs (the same pid started at the same
    time: a reused pid is another process)."""
    import psutil

    try:
        process = psutil.Process(int(tags[TAG_PID]))
        return f"{process.create_time():.2f}" == tags.get(TAG_PROCESS_START)
    except (psutil.NoSuchProcess, psutil.AccessDenied, KeyError, ValueError):
        return False


def fail_orphaned_runs(experiment_id: str) -> list[str]:
    """Mark FAILED every RUNNING run of the experiment whose process, on this host, is gone
    (pipeline parents included); runs of other hosts are left alone, as their processes cannot
    be seen from here. Returns the run ids marked."""
    import mlflow

    client = mlflow.MlflowClient()
    host = socket.gethostname()
    marked = []
    query = "attributes.status = 'RUNNING'"
    for run in retry(client.search_runs, [experiment_id], query):
        tags = run.data.tags
        if tags.get(TAG_HOST) != host or _process_alive(tags):
            continue
        retry(
            client.set_tag, run.info.run_id, "ended_by", "a later invocation: its process was gone"
        )
        retry(client.set_terminated, run.info.run_id, "FAILED")
        marked.append(run.info.run_id)
    return marked


def with_tag(tags: Sequence[str], key: str, value: object) -> list[str]:
    """``KEY=VALUE`` tags (the CLI's ``--tag``) with ``key`` added unless already given."""
    given = {t.split("=", 1)[0] for t in tags}
    return [*tags, f"{key}={value}"] if key not in given else list(tags)


@contextlib.contextmanager
def stage_run(
    stage: str,
    params: Mapping[str, Any],
    rule: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> Iterator[StageRun]:
    """Open one MLflow run for one executed stage; it ends FAILED if the stage raises.

    Under several processes (``accelerate launch``) only rank 0 tracks; the others get a run
    handle that records nothing.
    """
    import mlflow

    if int(os.environ.get("RANK", "0")) > 0:
        yield NullRun()
        return

    experiment_id = ensure_experiment()
    commit, dirty = provenance.git_state()
    all_tags = {
        TAG_PIPELINE_RUN: os.environ.get("EMBEDLAB_PIPELINE_RUN", "manual"),
        TAG_STAGE: stage,
        TAG_RULE: rule or stage,
        TAG_CONFIG_HASH: os.environ.get("EMBEDLAB_CONFIG_HASH", "none"),
        "mlflow.source.git.commit": commit,  # the MLflow UI shows it with the run
        provenance.TAG_CODE_COMMIT: commit,
        provenance.TAG_CODE_DIRTY: str(dirty).lower(),
        provenance.TAG_CODE_VERSION: provenance.stage_code_version(stage),
        **_process_tags(),
        **{wildcard_tag(k): str(v) for k, v in (tags or {}).items()},
    }
    for package in VERSIONED:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            all_tags[f"version.{package}"] = importlib.metadata.version(package)
    if os.environ.get("EMBEDLAB_PARENT_RUN"):
        all_tags["mlflow.parentRunId"] = os.environ["EMBEDLAB_PARENT_RUN"]
    name = "-".join([rule or stage, *[str(v) for v in (tags or {}).values()]])
    _fail_dead_runs(experiment_id, name)
    run = retry(mlflow.start_run, experiment_id=experiment_id, run_name=name, tags=all_tags)
    handle = StageRun(run.info.run_id)
    from embedlab.resolve import RESOLVED

    RESOLVED.clear()  # what this stage loads, not what an earlier one in the process did
    provenance.TRACKER.start(stage)  # likewise the lineage of what it reads
    try:
        retry(mlflow.log_params, _public(params))
        yield handle
    except BaseException:
        _close(handle, "FAILED")
        raise
    _close(handle, "FINISHED")


def _close(handle: StageRun, status: str) -> None:
    """Flush the metrics, tag where each model the stage loaded came from, end the run."""
    import mlflow

    from embedlab.resolve import RESOLVED

    handle.flush()
    for key, value in provenance.run_tags(provenance.TRACKER.current()).items():
        retry(mlflow.set_tag, key, value)  # every code version behind what the stage wrote
    for name, where in RESOLVED.items():  # e.g. "hub:/.../snapshots/<commit>", "packaged:..."
        key = re.sub(r"[^\w\-. /]", "_", f"{TAG_RESOLVED}{name}")  # MLflow's key alphabet
        retry(mlflow.set_tag, key, where)
    retry(mlflow.end_run, status=status)


PIPELINE = "pipeline"  # the stage tag of the parent run of one invocation


def start_pipeline_run(config: Mapping[str, Any]) -> str:
    """Open the parent run of one ``snakemake`` invocation (named by its ``pipeline_run`` id,
    the config as its params) and put its id in ``EMBEDLAB_PARENT_RUN``, so that every stage
    run started after it, locally or on a cluster, nests under it in the MLflow UI."""
    import mlflow

    experiment_id = ensure_experiment()
    fail_orphaned_runs(experiment_id)  # an earlier invocation killed: its runs end FAILED
    pipeline = os.environ.get("EMBEDLAB_PIPELINE_RUN", "manual")
    tags = {
        **_process_tags(),
        TAG_PIPELINE_RUN: pipeline,
        TAG_STAGE: PIPELINE,
        TAG_CONFIG_HASH: os.environ.get("EMBEDLAB_CONFIG_HASH", "none"),
        "mlflow.source.git.commit": provenance.git_state()[0],
    }
    client = mlflow.MlflowClient()
    run = retry(client.create_run, experiment_id, tags=tags, run_name=f"pipeline-{pipeline}")
    params = [mlflow.entities.Param(k, v) for k, v in _public(_flatten(config)).items()]
    for start in range(0, len(params), 100):  # MLflow takes at most 100 params a batch
        retry(client.log_batch, run.info.run_id, params=params[start : start + 100])
    os.environ["EMBEDLAB_PARENT_RUN"] = run.info.run_id
    return run.info.run_id


def end_pipeline_run(ok: bool) -> None:
    """Close the parent run that :func:`start_pipeline_run` opened, FINISHED or FAILED."""
    import mlflow

    run_id = os.environ.get("EMBEDLAB_PARENT_RUN")
    if run_id:
        status = "FINISHED" if ok else "FAILED"
        retry(mlflow.MlflowClient().set_terminated, run_id, status)


def _flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            out |= _flatten(value, f"{prefix}{key}.")
        else:
            out[prefix + key] = value
    return out
