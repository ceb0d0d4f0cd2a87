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
        track=track("prefetch"),
        folder=lambda wildcards, output: os.path.dirname(output[0]),
        models=" ".join(
            sorted(
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
            )
        ),
        tasks=" ".join(sorted({*config["evaluate"]["tasks"], "STSBenchmark"})),
        data=" ".join(
            s["path"]
            for s in config["corpus"]["sources"]
            if s.get("format", "auto") != "hf"
        ),
        mirrors=" ".join(f"--mirror {m}" for m in config["mirrors"]),
    shell:
        "embedlab {params.track} prefetch --out {params.folder} --models {params.models}"
        " --sts-tasks {params.tasks} --data {params.data} {params.mirrors} > {log} 2>&1"
