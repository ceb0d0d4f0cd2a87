rule tables:
    input:
        evals=expand(f"{R}/eval/{{model}}.parquet", model=MODELS),
        reference=config["tables"]["reference"],
    output:
        md=f"{R}/tables/sts.md",
        tex=f"{R}/tables/sts.tex",
        csv=f"{R}/tables/sts.csv",
        grouped_md=f"{R}/tables/sts_grouped.md",
        grouped_tex=f"{R}/tables/sts_grouped.tex",
        paired=f"{R}/tables/paired.md",
        figures=multiext(f"{R}/figures/avg_vs_batch", ".png", ".pdf")
        + multiext(f"{R}/figures/alignment_uniformity", ".png", ".pdf"),
    log:
        f"{R}/logs/tables.log",
    benchmark:
        f"{R}/benchmarks/tables.tsv"
    conda:
        "../../envs/embedlab.yaml"
    threads: 1
    params:
        track=track("tables"),
        models=MODELS,
        figures=lambda wildcards, output: os.path.dirname(output.figures[0]),
    shell:
        "OMP_NUM_THREADS={threads} embedlab {params.track} tables --models {params.models}"
        " --md {output.md} --tex {output.tex} --csv {output.csv}"
        " --grouped-md {output.grouped_md} --grouped-tex {output.grouped_tex}"
        " --paired-md {output.paired} --reference {input.reference}"
        " --figures {params.figures} > {log} 2>&1"
