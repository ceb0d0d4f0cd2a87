EVAL_ARGS = " " + MIRRORS + " --tasks {params.e[tasks]} --batch-size {params.e[batch_size]}"


ruleorder: evaluate_teacher > evaluate


rule evaluate_teacher:
    output:
        f"{R}/eval/teacher.parquet",
    params:
        tags=lambda w: "--tag model=teacher",
        e=config["evaluate"],
        model=config["teacher"]["model"],
    log:
        f"{R}/logs/evaluate/teacher.log",
    benchmark:
        f"{R}/benchmarks/evaluate/teacher.tsv"
    threads: workflow.cores
    shell:
        EMBEDLAB + " evaluate --model {params.model} --name teacher --out {output}"
        + EVAL_ARGS
        + " > {log} 2>&1"


rule evaluate:
    input:
        f"{R}/models/{{model}}",
    output:
        f"{R}/eval/{{model}}.parquet",
    params:
        tags=tags,
        e=config["evaluate"],
    log:
        f"{R}/logs/evaluate/{{model}}.log",
    benchmark:
        f"{R}/benchmarks/evaluate/{{model}}.tsv"
    threads: workflow.cores
    shell:
        EMBEDLAB + " evaluate --model {input} --name {wildcards.model} --out {output}"
        + EVAL_ARGS
        + " > {log} 2>&1"
