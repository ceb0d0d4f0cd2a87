# Runs on the submit node (localrules in the Snakefile): every model and data file the config
# names is copied into the staging folder, which then comes first in every job's mirrors.
rule prefetch:
    output:
        f"{PREFETCH['folder']}/manifest.json",
    log:
        f"{R}/logs/prefetch.log",
    benchmark:
        f"{R}/benchmarks/prefetch.tsv"
    conda:
        conda_env(0)
    params:
        code=stage_code_version("prefetch"),
        track=track("prefetch"),
        folder=lambda wildcards, output: os.path.dirname(output[0]),
        models=sorted(
            {
                config["teacher"]["model"],
                config["train"]["init"],
                # a local generator only; a served model (openai backend) is not staged
                *(
                    [config["synthesize"]["model"]]
                    if config["synthesize"]["backend"] != "openai"
                    else []
                ),
            }
        ),
        tasks=sorted({*config["evaluate"]["tasks"], "STSBenchmark"}),
        data=[
            s["path"]
            for s in config["corpus"]["sources"]
            if s.get("format", "auto") != "hf"
        ],
        mirrors=[f"--mirror={m}" for m in config["mirrors"]],
    shell:
        "embedlab {params.track:q} prefetch --out {params.folder:q} --models {params.models:q}"
        " --sts-tasks {params.tasks:q} --data {params.data:q} {params.mirrors:q} > {log:q} 2>&1"
