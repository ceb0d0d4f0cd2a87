rule synthesize:
    input:
        corpus=rules.corpus.output[0],
        prompt=config["synthesize"]["prompt"],
        staged=STAGED,
    output:
        pairs=f"{R}/synth/pairs.parquet",
        rejected=f"{R}/synth/rejected.parquet",
    log:
        f"{R}/logs/synthesize.log",
    benchmark:
        f"{R}/benchmarks/synthesize.tsv"
    conda:
        "../../envs/embedlab.yaml"
    threads: workflow.cores
    resources:
        gpu=config["synthesize"]["gpus"],
        cpus_per_gpu=4,
        mem_mb=8000,
        runtime=30 + N // (1000 if config["synthesize"]["gpus"] else 60),
    params:
        track=track("synthesize"),
        args=cli_args(config["synthesize"], skip=["prompt", "gpus"]),
        seed=config["seed"],
    shell:
        "OMP_NUM_THREADS={threads} embedlab {params.track} synthesize"
        " --corpus {input.corpus} --prompt {input.prompt} --seed {params.seed}"
        " --pairs-out {output.pairs} --rejected-out {output.rejected} {params.args}"
        " > {log} 2>&1"
