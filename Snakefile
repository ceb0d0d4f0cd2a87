# embedlab: corpus -> synthesize -> teacher/mine -> train -> evaluate -> tables.
# Rules are thin: each calls `embedlab <stage>`; all logic lives in src/embedlab.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


# every problem of the config at once, in a few lines; then Snakemake fills in the defaults
from embedlab.preflight import check_config

check_config(config, f"{workflow.basedir}/workflow/schemas/config.schema.yaml")
validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"


onstart:
    # before any job: every model and file the config names, and the sizes known in advance
    # (a typo stops the run here, not after synthesis); then one experiment, created before any
    # job, so that concurrent jobs only add runs to it
    # The invocation's parent run opens here and every job's run nests under it.
    from embedlab.preflight import preflight
    from embedlab.tracking import start_pipeline_run

    preflight(config, MIRRORS)
    start_pipeline_run(config)


onsuccess:
    from embedlab.tracking import end_pipeline_run

    end_pipeline_run(ok=True)


onerror:
    from embedlab.tracking import end_pipeline_run

    end_pipeline_run(ok=False)


wildcard_constraints:
    miner="|".join(GRID["miners"]),
    bs=r"\d+",
    seed=r"\d+",


localrules:
    prefetch,
    tables,


include: "workflow/rules/prefetch.smk"
include: "workflow/rules/corpus.smk"
include: "workflow/rules/synthesize.smk"
include: "workflow/rules/mine.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/sweep.smk"


rule all:
    default_target: True
    input:
        rules.tables.output,
        expand(f"{R}/batches/{{run}}.png", run=RUNS),
