ruleorder: evaluate_teacher > evaluate_seeds > evaluate


# What the three evaluate rules share: the teacher's, one model's and a grid cell's seeds'.
EVALUATE_RESOURCES = dict(
    gpu=config["evaluate"]["gpus"], cpus_per_gpu=4, mem_mb=4000, runtime=60
)
EVALUATE_ARGS = cli_args(EvaluateSettings, config["evaluate"], cache="eval")


rule evaluate_teacher:
    input:
        staged=STAGED,
    output:
        f"{R}/eval/teacher.parquet",
    log:
        f"{R}/logs/evaluate/teacher.log",
    benchmark:
        f"{R}/benchmarks/evaluate/teacher.tsv"
    conda:
        conda_env(config["evaluate"]["gpus"])
    threads: workflow.cores
    resources:
        **EVALUATE_RESOURCES,
    params:
        code=stage_code_version("evaluate"),
        track=track("evaluate_teacher", model="teacher"),
        args=EVALUATE_ARGS,
        model=config["teacher"]["model"],
    shell:
        "OMP_NUM_THREADS={threads} embedlab {params.track:q} evaluate --model {params.model:q}"
        " --name teacher --out {output:q} {params.args:q} > {log:q} 2>&1"


rule evaluate:
    input:
        model=f"{R}/models/{{model}}",
        staged=STAGED,
    output:
        f"{R}/eval/{{model}}.parquet",
    log:
        f"{R}/logs/evaluate/{{model}}.log",
    benchmark:
        f"{R}/benchmarks/evaluate/{{model}}.tsv"
    conda:
        conda_env(config["evaluate"]["gpus"])
    threads: workflow.cores
    resources:
        **EVALUATE_RESOURCES,
    params:
        code=stage_code_version("evaluate"),
        track=track("evaluate"),
        args=EVALUATE_ARGS,
    shell:
        "OMP_NUM_THREADS={threads} embedlab {params.track:q} evaluate --model {input.model:q}"
        " --name {wildcards.model:q} --out {output:q} {params.args:q} > {log:q} 2>&1"


# The seeds of one grid cell in one job: a job spends seconds importing its libraries, an
# evaluation of a static student about three, so a grid evaluates in a fraction of the time.
rule evaluate_seeds:
    input:
        models=expand(f"{R}/models/{RUN_NAME}", seed=GRID["seeds"], allow_missing=True),
        staged=STAGED,
    output:
        expand(f"{R}/eval/{RUN_NAME}.parquet", seed=GRID["seeds"], allow_missing=True),
    log:
        f"{R}/logs/evaluate/{{miner}}-bs{{bs}}.log",
    benchmark:
        f"{R}/benchmarks/evaluate/{{miner}}-bs{{bs}}.tsv"
    conda:
        conda_env(config["evaluate"]["gpus"])
    threads: workflow.cores
    resources:
        **EVALUATE_RESOURCES,
    params:
        code=stage_code_version("evaluate"),
        track=track("evaluate"),
        names=lambda w, input: [Path(m).name for m in input.models],
        args=EVALUATE_ARGS,
    shell:
        "OMP_NUM_THREADS={threads} embedlab {params.track:q} evaluate --model {input.models:q}"
        " --name {params.names:q} --out {output:q} {params.args:q} > {log:q} 2>&1"
