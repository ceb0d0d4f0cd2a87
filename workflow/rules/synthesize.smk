rule synthesize:
    input:
        corpus=rules.corpus.output[0],
        prompt=config["synthesize"]["prompt"],
    output:
        pairs=f"{R}/synth/pairs.parquet",
        rejected=f"{R}/synth/rejected.parquet",
    params:
        tags=tags,
        s=config["synthesize"],
        seed=config["seed"],
        out_dir=f"{R}/synth",
    log:
        f"{R}/logs/synthesize.log",
    benchmark:
        f"{R}/benchmarks/synthesize.tsv"
    threads: workflow.cores
    resources:
        mem_mb=4000,
    shell:
        EMBEDLAB + " synthesize --corpus {input.corpus} --prompt {input.prompt}"
        " --out-dir {params.out_dir} --model {params.s[model]} " + MIRRORS + ""
        " --n-anchors {params.s[n_anchors]} --batch-size {params.s[batch_size]}"
        " --max-new-tokens {params.s[max_new_tokens]}"
        " --copy-threshold {params.s[copy_threshold]} --seed {params.seed} > {log} 2>&1"
