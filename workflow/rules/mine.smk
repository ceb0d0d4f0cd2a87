rule teacher:
    input:
        pairs=rules.synthesize.output.pairs,
    output:
        emb=f"{R}/teacher/{TEACHER}.npy",
        ids=f"{R}/teacher/{TEACHER}.ids.parquet",
    params:
        tags=tags,
        t=config["teacher"],
    log:
        f"{R}/logs/teacher.log",
    benchmark:
        f"{R}/benchmarks/teacher.tsv"
    threads: workflow.cores
    shell:
        EMBEDLAB + " teacher --pairs {input.pairs} --model {params.t[model]} " + MIRRORS + ""
        " --out {output.emb} --ids-out {output.ids} --batch-size {params.t[batch_size]}"
        " --dtype {params.t[dtype]} > {log} 2>&1"


rule mine:
    input:
        pairs=rules.synthesize.output.pairs,
        emb=rules.teacher.output.emb,
        ids=rules.teacher.output.ids,
    output:
        f"{R}/batches/{{miner}}-bs{{bs}}-seed{{seed}}.parquet",
    params:
        tags=tags,
        epochs=config["mine"]["epochs"],
        options=lambda w: json_arg(config["mine"].get(w.miner, {})),
    log:
        f"{R}/logs/mine/{{miner}}-bs{{bs}}-seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/mine/{{miner}}-bs{{bs}}-seed{{seed}}.tsv"
    threads: 1
    shell:
        EMBEDLAB + " mine --miner {wildcards.miner} --pairs {input.pairs}"
        " --embeddings {input.emb} --ids {input.ids} --out {output}"
        " --batch-size {wildcards.bs} --epochs {params.epochs} --seed {wildcards.seed}"
        " --options {params.options} > {log} 2>&1"
