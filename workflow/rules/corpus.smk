rule corpus:
    input:
        staged=STAGED,
    output:
        f"{R}/corpus.parquet",
    log:
        f"{R}/logs/corpus.log",
    benchmark:
        f"{R}/benchmarks/corpus.tsv"
    conda:
        conda_env(0)
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        code=stage_code_version("corpus"),
        track=track("corpus"),
        args=cli_args(CorpusSettings, config["corpus"]),
        seed=config["seed"],
    shell:
        "OMP_NUM_THREADS={threads} embedlab {params.track:q} corpus --out {output:q}"
        " --seed {params.seed:q} {params.args:q} > {log:q} 2>&1"
