rule student_init:
    input:
        staged=STAGED,
    output:
        directory(f"{R}/models/student-init"),
    log:
        f"{R}/logs/train/student-init.log",
    benchmark:
        f"{R}/benchmarks/train/student-init.tsv"
    conda:
        conda_env(0)
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        code=stage_code_version("train"),
        track=track("student_init"),
        args=cli_args(TrainSettings, config["train"]),
    shell:
        "OMP_NUM_THREADS={threads} embedlab {params.track:q} train --out {output:q}"
        " {params.args:q} > {log:q} 2>&1"


# One optimiser step per mined batch, in the batch file's order. With train.gpus > 0 the job
# asks the scheduler for that many GPUs and runs one process per GPU; checkpoints go outside the
# output folder, so a job killed midway resumes where it stopped when Snakemake reruns it.
rule train:
    input:
        pairs=rules.synthesize.output.pairs,
        batches=f"{R}/batches/{RUN_NAME}.parquet",
        staged=STAGED,
    output:
        directory(f"{R}/models/{RUN_NAME}"),
    log:
        f"{R}/logs/train/{RUN_NAME}.log",
    benchmark:
        f"{R}/benchmarks/train/{RUN_NAME}.tsv"
    conda:
        conda_env(config["train"]["gpus"])
    threads: workflow.cores
    resources:
        gpu=config["train"]["gpus"],
        cpus_per_gpu=8,  # used only when gpu > 0; else cpus_per_task = threads
        mem_mb=16000,
        runtime=config["train"]["runtime"],
    params:
        code=stage_code_version("train"),
        launch=lambda wildcards, resources: launcher(resources.gpu),
        track=track("train"),
        args=cli_args(TrainSettings, config["train"]),
        checkpoints=f"{R}/checkpoints/{RUN_NAME}",
    shell:
        "OMP_NUM_THREADS={threads} {params.launch} {params.track:q} train"
        " --pairs {input.pairs:q} --batches {input.batches:q} --out {output:q}"
        " --checkpoint-dir {params.checkpoints:q} --seed {wildcards.seed:q}"
        " --batch-size {wildcards.bs:q}"
        " {params.args:q} > {log:q} 2>&1"
