TRAIN_ARGS = (
    " --student {params.t[student]} --init {params.t[init]} " + MIRRORS + ""
    " --lr {params.t[lr]} --weight-decay {params.t[weight_decay]}"
    " --warmup-ratio {params.t[warmup_ratio]} --temperature {params.t[temperature]}"
    " --max-grad-norm {params.t[max_grad_norm]} --mixed-precision {params.t[mixed_precision]}"
)


rule student_init:
    output:
        directory(f"{R}/models/student-init"),
    params:
        tags=tags,
        t=config["train"],
    log:
        f"{R}/logs/train/student-init.log",
    benchmark:
        f"{R}/benchmarks/train/student-init.tsv"
    threads: 1
    shell:
        EMBEDLAB + " train --out {output}" + TRAIN_ARGS + " > {log} 2>&1"


rule train:
    input:
        pairs=rules.synthesize.output.pairs,
        batches=rules.mine.output[0],
    output:
        directory(f"{R}/models/{{miner}}-bs{{bs}}-seed{{seed}}"),
    params:
        tags=tags,
        t=config["train"],
    log:
        f"{R}/logs/train/{{miner}}-bs{{bs}}-seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/train/{{miner}}-bs{{bs}}-seed{{seed}}.tsv"
    threads: workflow.cores
    shell:
        EMBEDLAB + " train --pairs {input.pairs} --batches {input.batches} --out {output}"
        " --seed {wildcards.seed}" + TRAIN_ARGS + " > {log} 2>&1"
