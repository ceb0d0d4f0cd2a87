# Hyperparameters chosen on STS-B dev only (`snakemake sweep`): the optimiser with random
# batches, then b3's options; every trial is a nested MLflow run. Not part of `all`: a study
# copies the chosen values into its config, with the sweep's table in docs/studies.md.
rule sweep:
    input:
        pairs=rules.synthesize.output.pairs,
        emb=rules.teacher.output.emb,
        ids=rules.teacher.output.ids,
        staged=STAGED,
    output:
        md=f"{R}/sweep/sweep.md",
        csv=f"{R}/sweep/sweep.csv",
    log:
        f"{R}/logs/sweep.log",
    benchmark:
        f"{R}/benchmarks/sweep.tsv"
    conda:
        conda_env(0)
    threads: workflow.cores
    resources:
        mem_mb=8000,
        runtime=240,
    params:
        code=stage_code_version("sweep"),
        track=track("sweep"),
        # the student is the train section's, so the sweep tunes the student then trained
        args=cli_args(SweepSettings, config["sweep"], config["train"]),
    shell:
        "OMP_NUM_THREADS={threads} embedlab {params.track:q} sweep --pairs {input.pairs:q}"
        " --embeddings {input.emb:q} --ids {input.ids:q}"
        " --md {output.md:q} --csv {output.csv:q} {params.args:q} > {log:q} 2>&1"
