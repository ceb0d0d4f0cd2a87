rule synthesize:
    input:
        corpus=rules.corpus.output[0],
        prompt=config["synthesize"]["prompt"],
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
        mem_mb=4000,
    params:
        track=track("synthesize"),
        args=cli_args(config["synthesize"], skip=["prompt"]),
        seed=config["seed"],
    shell:
        "OMP_NUM_THREADS={threads} embedlab {params.track} synthesize"
        " --corpus {input.corpus} --prompt {input.prompt} --seed {params.seed}"
        " --pairs-out {output.pairs} --rejected-out {output.rejected} {params.args}"
        " > {log} 2>&1"
