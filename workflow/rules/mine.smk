rule teacher:
    input:
        pairs=rules.synthesize.output.pairs,
        staged=STAGED,
    output:
        emb=f"{R}/teacher/{TEACHER}.npy",
        ids=f"{R}/teacher/{TEACHER}.ids.parquet",
    log:
        f"{R}/logs/teacher.log",
    benchmark:
        f"{R}/benchmarks/teacher.tsv"
    conda:
        conda_env(0)
    threads: workflow.cores
    resources:
        mem_mb=4000 + 3 * N * 384 * 4 // 2**20,
        runtime=30 + N // 20000,
    params:
        code=stage_code_version("teacher"),
        track=track("teacher"),
        args=cli_args(TeacherSettings, config["teacher"], cache="teacher"),
    shell:
        "OMP_NUM_THREADS={threads} embedlab {params.track:q} teacher --pairs {input.pairs:q}"
        " --out {output.emb:q} --ids-out {output.ids:q} {params.args:q} > {log:q} 2>&1"


# The seeds of one grid cell in one job (one MLflow run each): a job spends seconds importing
# its libraries, mining a small set takes about as long.
rule mine:
    input:
        pairs=rules.synthesize.output.pairs,
        emb=rules.teacher.output.emb,
        ids=rules.teacher.output.ids,
    output:
        batches=expand(
            f"{R}/batches/{RUN_NAME}.parquet", seed=GRID["seeds"], allow_missing=True
        ),
        plots=expand(
            f"{R}/batches/{RUN_NAME}.png", seed=GRID["seeds"], allow_missing=True
        ),
    log:
        f"{R}/logs/mine/{{miner}}-bs{{bs}}.log",
    benchmark:
        f"{R}/benchmarks/mine/{{miner}}-bs{{bs}}.tsv"
    conda:
        conda_env(0)
    # small sets: one core per job, many grid cells at once; from 100k rows the neighbour
    # search and METIS's two halves use every core (docs/mining-scale.md)
    threads: 1 if N < 100_000 else workflow.cores
    resources:
        mem_mb=2000 + N // 150,  # above the peak at N = 1M in the README's mine-scale table
        runtime=30 + len(GRID["seeds"]) * N // 20000,
    params:
        code=stage_code_version("mine"),
        track=track("mine"),
        args=cli_args(MineSettings, config["mine"]),
        seeds=GRID["seeds"],
        options=lambda w: json.dumps(config["mine"].get(w.miner, {})),
    shell:
        "OMP_NUM_THREADS={threads} embedlab {params.track:q} mine --miner {wildcards.miner:q}"
        " --pairs {input.pairs:q} --embeddings {input.emb:q} --ids {input.ids:q}"
        " --out {output.batches:q} --batch-size {wildcards.bs:q} {params.args:q}"
        " --seed {params.seeds:q} --options {params.options:q} --plot {output.plots:q} > {log:q} 2>&1"
