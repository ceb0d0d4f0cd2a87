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
        grouped_csv=f"{R}/tables/sts_grouped.csv",
        grouped_html=report(
            f"{R}/tables/sts_grouped.html",
            caption="../report/sts_grouped.rst",
            category="Tables",
        ),
        paired=report(
            f"{R}/tables/paired.md", caption="../report/paired.rst", category="Tables"
        ),
        study=f"{R}/study.md",
        avg_png=report(
            f"{R}/figures/avg_vs_batch.png",
            caption="../report/avg_vs_batch.rst",
            category="Figures",
        ),
        au_png=report(
            f"{R}/figures/alignment_uniformity.png",
            caption="../report/alignment_uniformity.rst",
            category="Figures",
        ),
        hist_png=report(
            f"{R}/figures/in_batch_similarity.png",
            caption="../report/in_batch_similarity.rst",
            category="Figures",
        ),
        pdfs=multiext(f"{R}/figures/avg_vs_batch", ".pdf")
        + multiext(f"{R}/figures/alignment_uniformity", ".pdf")
        + multiext(f"{R}/figures/in_batch_similarity", ".pdf"),
    log:
        f"{R}/logs/tables.log",
    benchmark:
        f"{R}/benchmarks/tables.tsv"
    conda:
        conda_env(0)
    threads: 1
    params:
        code=stage_code_version("tables"),
        track=track("tables"),
        figures=lambda wildcards, output: os.path.dirname(output.avg_png),
        args=cli_args(TablesSettings, config["tables"]),
    shell:
        "OMP_NUM_THREADS={threads} embedlab {params.track:q} tables --evals {input.evals:q}"
        " --md {output.md:q} --tex {output.tex:q} --csv {output.csv:q}"
        " --grouped-md {output.grouped_md:q} --grouped-tex {output.grouped_tex:q}"
        " --grouped-html {output.grouped_html:q} --grouped-csv {output.grouped_csv:q}"
        " --paired-md {output.paired:q} --figures {params.figures:q}"
        " --study {output.study:q} {params.args:q} > {log:q} 2>&1"
