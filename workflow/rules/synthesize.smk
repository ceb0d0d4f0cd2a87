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
        conda_env(SYNTH["gpus"])
    threads: workflow.cores
    resources:
        gpu=SYNTH["gpus"],
        cpus_per_gpu=4,
        mem_mb=8000,
        runtime=30 + N * SYNTH["max_attempts"] // (1000 if SYNTH["gpus"] else 60),
    params:
        code=stage_code_version("synthesize"),
        track=track("synthesize"),
        inputs=synth_args,
        options=cli_args(
            SynthesizeSettings,
            SYNTH,
            cache="synth",
            prompt=PROMPT,
            teacher=config["teacher"]["model"],
        ),
        seed=config["seed"],
    shell:
        "OMP_NUM_THREADS={threads} embedlab {params.track:q} synthesize {params.inputs:q}"
        " --seed {params.seed:q} --pairs-out {output.pairs:q} --rejected-out {output.rejected:q}"
        " --samples-out {output.samples:q}"
        " {params.options:q} > {log:q} 2>&1"
