rule student_init:
    output:
        directory(f"{R}/models/student-init"),
    log:
        f"{R}/logs/train/student-init.log",
    benchmark:
        f"{R}/benchmarks/train/student-init.tsv"
    conda:
        "../../envs/embedlab.yaml"
    threads: 1
    params:
        track=track("student_init"),
        args=cli_args(config["train"]),
    shell:
        "OMP_NUM_THREADS={threads} embedlab {params.track} train --out {output}"
        " {params.args} > {log} 2>&1"


rule train:
    input:
        pairs=rules.synthesize.output.pairs,
        batches=rules.mine.output.batches,
    output:
        directory(f"{R}/models/{{miner}}-bs{{bs}}-seed{{seed}}"),
    log:
        f"{R}/logs/train/{{miner}}-bs{{bs}}-seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/train/{{miner}}-bs{{bs}}-seed{{seed}}.tsv"
    conda:
        "../../envs/embedlab.yaml"
    threads: workflow.cores
    params:
        track=track("train"),
        args=cli_args(config["train"]),
    shell:
        "OMP_NUM_THREADS={threads} embedlab {params.track} train --pairs {input.pairs}"
        " --batches {input.batches} --out {output} --seed {wildcards.seed}"
        " {params.args} > {log} 2>&1"
