rule tables:
    input:
        expand(f"{R}/eval/{{model}}.parquet", model=MODELS),
    output:
        md=f"{R}/tables/sts.md",
        tex=f"{R}/tables/sts.tex",
        csv=f"{R}/tables/sts.csv",
    params:
        tags=tags,
        models=" ".join(MODELS),
        out_dir=f"{R}/tables",
    log:
        f"{R}/logs/tables.log",
    benchmark:
        f"{R}/benchmarks/tables.tsv"
    threads: 1
    shell:
        EMBEDLAB + " tables --models {params.models} --out-dir {params.out_dir} > {log} 2>&1"
