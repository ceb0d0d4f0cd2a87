rule corpus:
    output:
        f"{R}/corpus.parquet",
    params:
        tags=tags,
        sources=json_arg(config["corpus"]["sources"]),
        c=config["corpus"],
        seed=config["seed"],
    log:
        f"{R}/logs/corpus.log",
    benchmark:
        f"{R}/benchmarks/corpus.tsv"
    threads: 1
    shell:
        EMBEDLAB + " corpus --out {output} --sources {params.sources} " + MIRRORS + ""
        " --max-sentences {params.c[max_sentences]} --min-chars {params.c[min_chars]}"
        " --max-chars {params.c[max_chars]} --seed {params.seed} > {log} 2>&1"
