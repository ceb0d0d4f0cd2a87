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
        "../../envs/embedlab.yaml"
    threads: 1
    params:
        track=track("tables"),
        models=MODELS,
        figures=lambda wildcards, output: os.path.dirname(output.avg_png),
        compare=" ".join(
            [
                "--compare",
                *(shlex.quote(json.dumps(c)) for c in config["tables"]["compare"]),
            ]
        ),
        title=shlex.quote(config["tables"]["title"] or config["experiment"]),
        experiments=(
            "--experiments "
            + " ".join(map(shlex.quote, config["tables"]["experiments"]))
            if config["tables"]["experiments"]
            else ""
        ),
    shell:
        "OMP_NUM_THREADS={threads} embedlab {params.track} tables --models {params.models}"
        " --md {output.md} --tex {output.tex} --csv {output.csv}"
        " --grouped-md {output.grouped_md} --grouped-tex {output.grouped_tex}"
        " --grouped-html {output.grouped_html} --grouped-csv {output.grouped_csv}"
        " --paired-md {output.paired} --reference {input.reference}"
        " --figures {params.figures} {params.experiments} {params.compare}"
        " --study {output.study} --title {params.title} > {log} 2>&1"
