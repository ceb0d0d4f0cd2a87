rule synthesize:
    input:
        unpack(synth_inputs),
    output:
        pairs=f"{R}/synth/pairs.parquet",
        rejected=f"{R}/synth/rejected.parquet",
        samples=f"{R}/synth/samples.md",
    log:
        f"{R}/logs/synthesize.log",
    benchmark:
        f"{R}/benchmarks/synthesize.tsv"
    conda:
        "../../envs/embedlab.yaml"
    threads: workflow.cores
    resources:
        gpu=SYNTH["gpus"],
        cpus_per_gpu=4,
        mem_mb=8000,
        runtime=30 + N // (1000 if SYNTH["gpus"] else 60),
    params:
        track=track("synthesize"),
        inputs=synth_args,
        options=cli_args(
            {
                **SYNTH,
                **(SYNTH["openai"] if SYNTH["backend"] == "openai" else {}),
                **(
                    {"import_layout": SYNTH["import"]["layout"]}
                    if SYNTH["mode"] == "import"
                    else {"teacher": config["teacher"]["model"]}
                ),
            },
            skip=["prompt", "gpus", "openai", "import", "teacher_margin"],
        ),
        margin=(
            "--no-teacher-filter"
            if SYNTH["teacher_margin"] is None
            else f"--teacher-margin {SYNTH['teacher_margin']}"
        ),
        seed=config["seed"],
    shell:
        "OMP_NUM_THREADS={threads} embedlab {params.track} synthesize {params.inputs}"
        " --seed {params.seed} --pairs-out {output.pairs} --rejected-out {output.rejected}"
        " --samples-out {output.samples}"
        " {params.options} {params.margin} > {log} 2>&1"
