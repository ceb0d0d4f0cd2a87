r"""`embedlab <stage> ...`: every stage of the pipeline, runnable with or without Snakemake.

Each command reads its inputs, validates them against their schemas, writes its outputs
atomically and logs one MLflow run (params = its arguments, metrics = its figures).

    embedlab corpus --out corpus.parquet --sources '{"path": "corpus/wordnet-examples.txt"}' \
        --mirror ../shared/data
    embedlab evaluate --model sentence-transformers/all-MiniLM-L6-v2 --name teacher \
        --out eval.parquet --mirror ../shared/data
"""

import argparse
import json
import logging
import os
import re
import shutil
import sys
from pathlib import Path

import polars as pl

from embedlab import schemas
from embedlab.atomic import atomic_write
from embedlab.tracking import StageRun, stage_run

log = logging.getLogger("embedlab")


def cmd_corpus(args: argparse.Namespace, run: StageRun) -> None:
    from embedlab.corpus import Source, build_corpus

    sources = [Source(**json.loads(s)) for s in args.sources]
    corpus, counts = build_corpus(
        sources, args.mirror, args.max_sentences, args.min_chars, args.max_chars, args.seed
    )
    schemas.write(corpus, args.out, schemas.Corpus)
    run.log_metrics(counts)
    log.info("corpus: %s", counts)


def cmd_synthesize(args: argparse.Namespace, run: StageRun) -> None:
    from embedlab.synth import Filters, SynthSettings, import_pairs, make_backend, synthesize
    from embedlab.synth.generate import Teacher, samples_markdown
    from embedlab.synth.prompts import PromptPool

    filters = Filters(args.copy_threshold, args.min_chars, args.max_chars)
    if args.mode == "unlabeled":  # unsupervised SimCSE: the corpus itself, no generator
        from embedlab.corpus.build import unlabeled_pairs

        pairs = unlabeled_pairs(schemas.read(args.corpus, schemas.Corpus))
        rejected = pl.DataFrame(schema=schemas.polars_schema(schemas.Rejected))
        stats = {"rows": float(pairs.height), "accepted": float(pairs.height)}
    elif args.mode == "import":
        if not args.import_path:
            raise ValueError("synthesize: mode 'import' needs --import-path (config import.path)")
        anchors = None
        if args.corpus:  # import.match_corpus: the corpus sample decides which rows come in
            anchors = schemas.read(args.corpus, schemas.Corpus)["text"].to_list()
        if args.match_pairs:  # import.match_pairs: the anchors another run kept
            kept = schemas.read(args.match_pairs, schemas.Pairs)["anchor"].to_list()
            anchors = kept if anchors is None else sorted(set(anchors) & set(kept))
        pairs, rejected, stats = import_pairs(
            args.import_path, args.import_layout, filters, args.n_anchors, args.mirror, anchors
        )
    else:
        pool = PromptPool.load(args.prompt)
        if pool.mode != args.mode:
            raise ValueError(f"{args.prompt}: a {pool.mode!r} prompt pool, mode is {args.mode!r}")
        corpus = None if args.mode == "scratch" else schemas.read(args.corpus, schemas.Corpus)
        options = {
            "transformers": {"device": args.device},
            "openai": {
                "base_url": args.base_url,
                "api_key_env": args.api_key_env,
                "concurrency": args.concurrency,
                "timeout_s": args.timeout_s,
                "max_attempts": args.max_attempts,
            },
        }.get(args.backend, {})
        backend = make_backend(args.backend, args.model, args.mirror, args.seed, **options)
        teacher = None
        if args.teacher_margin is not None:
            teacher = Teacher.load(args.teacher, args.mirror)
        settings = SynthSettings(
            args.n_anchors,
            args.batch_size,
            args.max_new_tokens,
            args.seed,
            filters,
            args.teacher_margin,
            args.feedback,
        )
        shards = args.shards or str(Path(args.pairs_out).parent / "shards")
        pairs, rejected, stats = synthesize(
            corpus,
            backend,
            pool,
            settings,
            shards,
            teacher,
            on_chunk=lambda i, f: run.log_metrics({"chunk_tokens_per_s": f["tokens_per_s"]}, i),
            cache=args.cache_dir,
        )
        stats["http_retries"] = float(getattr(backend, "retries", 0))
    schemas.write(rejected, args.rejected_out, schemas.Rejected)
    schemas.write(pairs, args.pairs_out, schemas.Pairs)
    samples = Path(args.samples_out or Path(args.pairs_out).with_name("samples.md"))
    samples.write_text(samples_markdown(pairs, rejected, seed=args.seed))
    run.log_metrics(stats)
    for path in (args.rejected_out, samples):
        run.log_artifact(path, "synth")
    if args.mode not in ("import", "unlabeled"):
        shutil.rmtree(shards, ignore_errors=True)  # every row is in the two tables now
    log.info("synthesize: %s", stats)


def cmd_teacher(args: argparse.Namespace, run: StageRun) -> None:
    import time

    from embedlab.encode import load_encoder
    from embedlab.mine import teacher

    pairs = schemas.read(args.pairs, schemas.Pairs)
    model = load_encoder(args.model, args.mirror)
    started = time.perf_counter()
    emb, ids, hit = teacher.embed_pairs(model, pairs, args.batch_size, args.cache_dir, args.model)
    seconds = time.perf_counter() - started
    teacher.save(emb.astype(args.dtype), ids, args.out, args.ids_out)
    run.log_metrics(
        {"texts": ids.height, "cache_hit": float(hit)}
        | ({} if hit else {"texts_per_s": ids.height / seconds})
    )


def cmd_mine(args: argparse.Namespace, run: StageRun) -> None:
    from embedlab.mine import MINERS
    from embedlab.mine.batches import batch_table, in_batch_similarity
    from embedlab.mine.diagnostics import plot_similarity, similarity_histogram, summarize
    from embedlab.mine.teacher import TeacherView

    if args.miner not in MINERS:
        raise ValueError(f"unknown miner {args.miner!r}; known: {sorted(MINERS)}")
    pairs = schemas.read(args.pairs, schemas.Pairs)
    view = TeacherView.load(args.embeddings, args.ids, pairs)
    texts = pairs["anchor"].to_list()
    options = json.loads(args.options)
    epochs, negatives, stats = MINERS[args.miner](
        view.anchor,
        texts,
        args.batch_size,
        args.epochs,
        args.seed,
        positives=view.positive,
        **options,
    )
    table = batch_table(epochs, pairs["id"].to_list(), negatives)
    schemas.write(table, args.out, schemas.Batches)
    baseline, _, _ = MINERS["random"](view.anchor, texts, args.batch_size, args.epochs, args.seed)
    sim = in_batch_similarity(view.anchor, epochs)
    base = in_batch_similarity(view.anchor, baseline)
    stats |= summarize(view.anchor, view.positive, texts, epochs, baseline, sim, base)
    stats["batches"] = float(table.select("epoch", "batch").unique().height)
    run.log_metrics(stats)
    # the histogram as one metric per bin (step = bin), drawn across miners by `tables`
    for key, values in (("in_batch_sim_hist", sim), ("random_in_batch_sim_hist", base)):
        for step, value in enumerate(similarity_histogram(values)):
            run.log_metrics({key: float(value)}, step=step)
    if args.plot:
        plot_similarity(sim, base, args.miner, args.plot)
        run.log_artifact(args.plot, "mine")
    log.info("mine %s: %s", args.miner, stats)


def cmd_train(args: argparse.Namespace, run: StageRun) -> None:
    from embedlab.train import TrainConfig, build_student, train, train_head
    from embedlab.train.distributed import world

    student = build_student(
        args.student,
        args.init,
        args.mirror,
        args.max_length,
        args.pooling,
        args.static_init,
        args.dim,
        args.seed,
    )
    if args.batches:
        from embedlab.evaluate import load_sts

        pairs = schemas.read(args.pairs, schemas.Pairs)
        batches = schemas.read(args.batches, schemas.Batches)
        config = TrainConfig(
            lr=args.lr,
            weight_decay=args.weight_decay,
            warmup_ratio=args.warmup_ratio,
            temperature=args.temperature,
            symmetric=args.symmetric,
            pair_weights=args.pair_weights,
            use_hard_negative=args.use_hard_negative,
            max_grad_norm=args.max_grad_norm,
            mixed_precision=args.mixed_precision,
            chunk_size=args.chunk_size,
            checkpoint_every=args.checkpoint_every,
            eval_every=args.eval_every,
            seed=args.seed,
        )
        dev = load_sts("STSBenchmark", args.mirror, split="dev") if args.eval_every else None
        result = train(
            student,
            pairs,
            batches,
            config,
            on_step=lambda s, m: run.log_metrics(m, s),
            head=train_head(student, args.pooling),
            dev=dev,
            checkpoint_dir=args.checkpoint_dir,
        )
        student = result.model
        summary = {"steps": result.steps, "resumed_from_step": result.resumed_from}
        if result.dev_spearman is not None:
            summary |= {"best_dev_spearman": result.dev_spearman, "best_step": result.dev_step}
        run.log_metrics(summary)
        log.info("train: %s", summary)
    if world()[0] == 0:
        atomic_write(args.out, lambda tmp: student.save(str(tmp)))
        if args.checkpoint_dir:  # the run is complete: its checkpoints have served
            shutil.rmtree(args.checkpoint_dir, ignore_errors=True)


def cmd_sweep(args: argparse.Namespace, run: StageRun) -> None:
    import mlflow

    from embedlab.evaluate import load_sts
    from embedlab.mine.teacher import TeacherView
    from embedlab.sweep import SweepGrid, best_setting, summary, sweep, sweep_page
    from embedlab.tracking import retry
    from embedlab.train import build_student

    pairs = schemas.read(args.pairs, schemas.Pairs)
    view = TeacherView.load(args.embeddings, args.ids, pairs)
    grid = SweepGrid(**json.loads(args.grid))

    def student(seed: int):
        return build_student(
            args.student, args.init, args.mirror, None, None, args.static_init, args.dim, seed
        )

    def log_trial(row: dict) -> None:
        name = f"{row['miner']}-lr{row['lr']:g}-t{row['temperature']:g}-e{row['epochs']}"
        with retry(mlflow.start_run, run_name=name, nested=True):
            keys = ("miner", "options", "batch_size", "epochs", "lr", "temperature", "seed")
            retry(mlflow.log_params, {k: row[k] for k in keys})
            retry(
                mlflow.log_metrics,
                {"dev_spearman": row["dev_spearman"], "best_step": row["best_step"]},
            )

    dev = load_sts("STSBenchmark", args.mirror, split="dev")
    table = sweep(pairs, view, grid, student, dev, on_trial=log_trial)
    table.write_csv(args.csv)
    Path(args.md).write_text(sweep_page(table, os.environ.get("EMBEDLAB_EXPERIMENT", "")))
    chosen = {"train": best_setting(table), "b3": best_setting(table, "b3") if grid.b3 else None}
    run.log_metrics(
        {"trials": float(summary(table).height), "best_dev": chosen["train"]["dev_mean"]}
    )
    for path in (args.csv, args.md):
        run.log_artifact(path, "sweep")
    log.info("sweep: chosen %s", chosen)


def cmd_evaluate(args: argparse.Namespace, run: StageRun) -> None:
    from embedlab.encode import load_encoder
    from embedlab.evaluate import evaluate_sts, load_sts

    cached = None
    if args.cache_dir:  # the same model, tasks and code score the same: reuse the scores
        from embedlab.cache import code_hash, content_key
        from embedlab.resolve import model_identity

        setting = [args.tasks, args.geometry, args.retrieval, args.mteb, args.batch_size]
        setting.append([str(Path(m).resolve()) for m in args.mirror])  # where the data came from
        key = content_key(
            model_identity(args.model, args.mirror),
            setting,
            code_hash("embedlab.evaluate", "embedlab.encode"),
        )
        cached = Path(args.cache_dir) / f"{key}.parquet"
        scores = None
        if cached.exists():
            try:
                scores = schemas.read(cached, schemas.Scores)
            except schemas.DataError as err:  # a damaged entry: discarded, scored again
                log.warning("evaluation cache entry is damaged, scoring again: %s", err)
                cached.unlink()
        if scores is not None:
            schemas.write(scores, args.out, schemas.Scores)
            run.log_metrics(
                {f"{r['task']}.{r['metric']}": r["value"] for r in scores.iter_rows(named=True)}
                | {"cache_hit": 1.0}
            )
            run.log_artifact(args.out, "eval")
            log.info("evaluate %s: scores of the same model and code from %s", args.name, cached)
            return
    model = load_encoder(args.model, args.mirror)
    tasks = [load_sts(t, args.mirror) for t in args.tasks]
    scores = evaluate_sts(model, tasks, args.batch_size)
    if args.geometry:
        from embedlab.evaluate.geometry import geometry_scores

        dev = load_sts("STSBenchmark", args.mirror, split="dev")
        scores = scores.vstack(geometry_scores(model, dev, args.batch_size))
    for name in args.retrieval:
        from embedlab.evaluate.retrieval import evaluate_retrieval, load_retrieval, stsb_retrieval

        task = stsb_retrieval(args.mirror) if name == "stsb" else load_retrieval(name)
        scores = scores.vstack(evaluate_retrieval(model, task, args.batch_size))
    if args.mteb:
        from embedlab.evaluate.mteb_adapter import evaluate_mteb

        scores = scores.vstack(evaluate_mteb(model, args.mteb, args.mirror, args.batch_size))
    schemas.write(scores, args.out, schemas.Scores)
    if cached is not None:
        schemas.write(scores, cached, schemas.Scores)
    run.log_metrics(
        {f"{r['task']}.{r['metric']}": r["value"] for r in scores.iter_rows(named=True)}
    )
    run.log_artifact(args.out, "eval")
    log.info("evaluate %s:\n%s", args.name, scores)


def cmd_tables(args: argparse.Namespace, run: StageRun) -> None:
    from embedlab.tables import fetch_scores, to_latex, to_markdown
    from embedlab.tables.grouped import (
        comparisons,
        comparisons_markdown,
        group,
        grouped_html,
        grouped_latex,
        grouped_markdown,
        load_reference,
    )
    from embedlab.tables.sts import RUN, fetch_similarity_histograms

    reference = load_reference(args.reference) if args.reference else []
    scores = fetch_scores(args.models, args.experiments)
    grouped = group(scores)
    paired = comparisons(scores, extra=[json.loads(c) for c in args.compare])
    outputs = {
        args.md: to_markdown(scores),
        args.tex: to_latex(scores),
        args.grouped_md: grouped_markdown(grouped, reference),
        args.grouped_tex: grouped_latex(grouped, reference),
        args.grouped_html: grouped_html(grouped, reference),
        args.paired_md: comparisons_markdown(paired),
    }
    for path, text in outputs.items():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
    scores.write_csv(args.csv)
    grouped.write_csv(args.grouped_csv)
    for path in [*outputs, args.csv, args.grouped_csv]:
        run.log_artifact(path, "tables")
    if args.figures:
        from embedlab.tables import figures

        made = figures.avg_vs_batch(grouped, Path(args.figures) / "avg_vs_batch")
        made += figures.alignment_uniformity(scores, Path(args.figures) / "alignment_uniformity")
        made += figures.similarity_histograms(
            fetch_similarity_histograms(args.models), Path(args.figures) / "in_batch_similarity"
        )
        for path in made:
            run.log_artifact(path, "figures")
    for r in paired:
        key = f"paired.{r['a']}-{r['b']}.bs{r['batch_size']}-{r['b_batch_size']}"
        key = re.sub(r"[^\w\-. :/]", "/", key)  # MLflow's metric-name alphabet ("·" is not)
        run.log_metrics({f"{key}.{k}": r[k] for k in ("diff", "low", "high", "p")})
    if args.study:
        from embedlab.tables.mining import fetch_mining, mining_markdown
        from embedlab.tables.study import study_markdown, synthesis_markdown

        sections = {
            "STS (Spearman × 100, test sets; mean ± std over seeds)": outputs[args.grouped_md],
            "Paired comparisons (the seed is the unit: paired t over seeds)": outputs[
                args.paired_md
            ],
        }
        experiments = args.experiments or [os.environ.get("EMBEDLAB_EXPERIMENT", "embedlab")]
        sections["Training data (from the synthesize runs)"] = synthesis_markdown(experiments)
        mining = fetch_mining(experiments)
        if mining.height:
            miners = [m[1] for m in map(RUN.match, args.models) if m]
            heading = "In-batch hardness and false negatives (teacher cosine; from the mine runs)"
            sections[heading] = mining_markdown(mining, order=list(dict.fromkeys(miners)))
        study = Path(args.study)
        pngs = sorted(Path(args.figures).glob("*.png")) if args.figures else []
        figures = [str(p.relative_to(study.parent)) for p in pngs if study.parent in p.parents]
        title = args.title or experiments[0]
        study.write_text(study_markdown(title, sections, figures, experiments))
        run.log_artifact(study, "tables")
    print(to_markdown(scores), outputs[args.grouped_md], outputs[args.paired_md], sep="\n")


def cmd_prefetch(args: argparse.Namespace, run: StageRun) -> None:
    from embedlab.evaluate.sts import STS_TASKS
    from embedlab.prefetch import stage

    unknown = [t for t in args.sts_tasks if t not in STS_TASKS]
    if unknown:
        raise ValueError(f"unknown STS task {unknown[0]!r}; known: {sorted(STS_TASKS)}")
    data = [STS_TASKS[t][0] for t in args.sts_tasks] + list(args.data)
    manifest = stage(args.models, data, args.out, args.mirror)
    run.log_metrics({"staged": len(manifest)})
    run.log_artifact(Path(args.out) / "manifest.json", "prefetch")
    log.info("prefetch: %d items in %s", len(manifest), args.out)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="embedlab", description=__doc__.split("\n")[0])
    p.add_argument("--rule", help="Snakemake rule name, recorded as an MLflow tag")
    p.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="wildcard to record as an MLflow tag (repeatable)",
    )
    sub = p.add_subparsers(dest="stage", required=True)

    def stage(name: str, fn, help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help)
        sp.set_defaults(fn=fn)
        sp.add_argument("--mirror", action="append", default=[], help="mirror folder (repeatable)")
        return sp

    s = stage("corpus", cmd_corpus, "collect, check and deduplicate sentences")
    s.add_argument("--out", required=True)
    s.add_argument(
        "--sources",
        required=True,
        nargs="+",
        help='one JSON object per source: {"path": ..., "format": ..., "column": ...}',
    )
    s.add_argument("--max-sentences", type=int)
    s.add_argument("--min-chars", type=int, default=1)
    s.add_argument("--max-chars", type=int, default=10_000)
    s.add_argument("--seed", type=int, default=0)

    s = stage("synthesize", cmd_synthesize, "LLM-written pairs, or an imported set")
    s.add_argument(
        "--mode", choices=["partial", "scratch", "query", "import", "unlabeled"], default="partial"
    )
    s.add_argument(
        "--corpus", help="corpus.parquet (partial, query; import: only rows of these anchors)"
    )
    s.add_argument("--pairs-out", required=True)
    s.add_argument("--rejected-out", required=True)
    s.add_argument("--samples-out", help="Markdown of 10 accepted and 10 rejected rows")
    s.add_argument("--shards", help="folder of resumable shards (default: beside --pairs-out)")
    s.add_argument("--cache-dir", help="finished tables by content (fingerprint), reused by reruns")
    s.add_argument("--prompt", default="config/prompts/partial.yaml", help="prompt pool YAML")
    s.add_argument("--backend", choices=["transformers", "openai", "vllm"], default="transformers")
    s.add_argument("--model", default="HuggingFaceTB/SmolLM2-135M-Instruct")
    s.add_argument("--device", help="transformers backend: cpu, cuda, ... (default: cuda if any)")
    s.add_argument("--base-url", default="https://api.openai.com/v1", help="openai backend")
    s.add_argument("--api-key-env", default="OPENAI_API_KEY", help="variable holding the key")
    s.add_argument("--concurrency", type=int, default=8, help="openai backend: parallel requests")
    s.add_argument("--timeout-s", type=float, default=60.0, help="openai backend: per request")
    s.add_argument("--max-attempts", type=int, default=6, help="openai backend: per request")
    s.add_argument(
        "--import-path",
        nargs="+",
        help="mode import: the set's file(s), csv/tsv/txt/jsonl/json/parquet, local or hf://",
    )
    s.add_argument(
        "--match-pairs", help="mode import: only rows whose anchor is in this pairs.parquet"
    )
    s.add_argument(
        "--import-layout",
        choices=["auto", "syncse", "nli", "triplet", "snli", "coco"],
        default="auto",
    )
    s.add_argument("--n-anchors", type=int, default=320)
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--max-new-tokens", type=int, default=48)
    s.add_argument("--copy-threshold", type=float, default=0.9)
    s.add_argument("--min-chars", type=int, default=3)
    s.add_argument("--max-chars", type=int, default=400)
    s.add_argument("--teacher", default="sentence-transformers/all-MiniLM-L6-v2")
    s.add_argument(
        "--teacher-margin",
        type=float,
        default=0.0,
        help="teacher cos(anchor, positive) - cos(anchor, negative) must reach it",
    )
    s.add_argument("--no-teacher-filter", dest="teacher_margin", action="store_const", const=None)
    s.add_argument(
        "--feedback",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="CLAIF-style 0-5 similarity of anchor and positive by the generator, column score",
    )
    s.add_argument("--seed", type=int, default=0)

    s = stage("teacher", cmd_teacher, "teacher embeddings of the anchors")
    s.add_argument("--pairs", required=True)
    s.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2")
    s.add_argument("--out", required=True, help=".npy file")
    s.add_argument("--ids-out", required=True, help="parquet of id -> row")
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--dtype", choices=["float16", "float32"], default="float32")
    s.add_argument("--cache-dir", help="reuse embeddings of identical texts stored here")

    s = stage("mine", cmd_mine, "build the batch file (training order)")
    s.add_argument("--miner", required=True)
    s.add_argument("--pairs", required=True)
    s.add_argument("--embeddings", required=True)
    s.add_argument("--ids", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--batch-size", type=int, required=True)
    s.add_argument("--epochs", type=int, default=1)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--options", default="{}", help="JSON object of miner options (b3: p, m, ...)")
    s.add_argument("--plot", help="PNG histogram of in-batch similarity against random batches")

    s = stage("sweep", cmd_sweep, "choose lr, temperature, epochs and b3 options on STS-B dev")
    s.add_argument("--pairs", required=True)
    s.add_argument("--embeddings", required=True)
    s.add_argument("--ids", required=True)
    s.add_argument("--grid", required=True, help="JSON object of embedlab.sweep.SweepGrid fields")
    s.add_argument("--student", choices=["static"], default="static")
    s.add_argument("--init", default="sentence-transformers/all-MiniLM-L6-v2")
    s.add_argument("--static-init", choices=["teacher", "random"], default="teacher")
    s.add_argument("--dim", type=int, default=256)
    s.add_argument("--md", required=True, help="Markdown table of both rounds")
    s.add_argument("--csv", required=True, help="one row per trial and seed")

    s = stage("train", cmd_train, "train a student with InfoNCE over mined batches")
    s.add_argument("--student", choices=["static", "transformer"], default="static")
    s.add_argument("--init", default="sentence-transformers/all-MiniLM-L6-v2")
    s.add_argument("--pooling", choices=["mean", "cls", "cls_mlp"], help="transformer students")
    s.add_argument("--static-init", choices=["teacher", "random"], default="teacher")
    s.add_argument("--dim", type=int, default=256, help="width of a random static student")
    s.add_argument("--pairs")
    s.add_argument("--batches", help="batch file; without it the untrained student is saved")
    s.add_argument("--out", required=True)
    s.add_argument("--max-length", type=int)
    s.add_argument("--lr", type=float, default=3e-3)
    s.add_argument("--weight-decay", type=float, default=0.0)
    s.add_argument("--warmup-ratio", type=float, default=0.1)
    s.add_argument("--temperature", type=float, default=0.2)
    s.add_argument("--symmetric", action=argparse.BooleanOptionalAction, default=False)
    s.add_argument("--pair-weights", help="Pairs column that weighs each row's loss")
    s.add_argument(
        "--use-hard-negative",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="each row's own hard negative enters the loss (--no-...: positives only)",
    )
    s.add_argument("--max-grad-norm", type=float, default=1.0)
    s.add_argument(
        "--mixed-precision",
        choices=["no", "bf16", "fp16"],
        help="default: as the accelerate config says (no on a CPU)",
    )
    s.add_argument("--chunk-size", type=int, default=0, help="GradCache chunk (0: off)")
    s.add_argument("--checkpoint-every", type=int, default=0)
    s.add_argument("--checkpoint-dir", help="where checkpoints go; a rerun resumes from them")
    s.add_argument("--eval-every", type=int, default=0, help="STS-B dev selection (0: off)")
    s.add_argument("--seed", type=int, default=0)

    s = stage("evaluate", cmd_evaluate, "STS12-16, STS-B, SICK-R (SentEval 'all')")
    s.add_argument("--model", required=True, help="a model folder or a public id")
    s.add_argument("--name", required=True, help="row name in tables")
    s.add_argument("--out", required=True)
    s.add_argument(
        "--tasks",
        nargs="+",
        default=["STS12", "STS13", "STS14", "STS15", "STS16", "STSBenchmark", "SICKRelatedness"],
    )
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--cache-dir", help="scores by content (model files, settings, code), reused")
    s.add_argument(
        "--geometry",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="alignment and uniformity on STS-B dev (SimCSE's)",
    )
    s.add_argument(
        "--retrieval",
        nargs="*",
        default=[],
        help="retrieval tasks: 'stsb' (built from the STS-B mirror) or BEIR-layout folders",
    )
    s.add_argument(
        "--mteb",
        nargs="*",
        default=[],
        help="MTEB task names (needs mteb; data from the hub) or mirror:<STS task> (offline)",
    )

    s = stage("prefetch", cmd_prefetch, "stage models and data for offline compute nodes")
    s.add_argument("--out", required=True, help="folder to stage into (then a mirror)")
    s.add_argument("--models", nargs="*", default=[], help="model ids or paths")
    s.add_argument("--sts-tasks", nargs="*", default=[], help="STS task names")
    s.add_argument("--data", nargs="*", default=[], help="data paths relative to a mirror")

    s = stage("tables", cmd_tables, "paper tables from MLflow evaluate runs")
    s.add_argument("--models", nargs="+", required=True)
    s.add_argument("--md", required=True, help="Markdown table to write")
    s.add_argument("--tex", required=True, help="LaTeX (booktabs) table to write")
    s.add_argument("--csv", required=True, help="CSV of the same values")
    s.add_argument("--grouped-md", required=True, help="mean ± std over seeds (Markdown)")
    s.add_argument("--grouped-tex", required=True, help="mean ± std over seeds (LaTeX)")
    s.add_argument("--grouped-html", required=True, help="mean ± std over seeds (HTML)")
    s.add_argument("--grouped-csv", required=True, help="mean and std over seeds (CSV)")
    s.add_argument("--paired-md", required=True, help="paired comparisons over seeds (t)")
    s.add_argument(
        "--compare",
        nargs="*",
        default=[],
        help='extra comparisons across batch sizes: {"a": "b3", "a_bs": 64, "b": ..., "b_bs": ...}',
    )
    s.add_argument("--study", help="Markdown page of the study (tables, figures, provenance)")
    s.add_argument("--title", help="title of the study page (default: the experiment)")
    s.add_argument("--reference", help="YAML of published rows, shown apart as reported")
    s.add_argument(
        "--experiments",
        nargs="*",
        default=[],
        help="MLflow experiments to gather (default: the current one); rows named by source",
    )
    s.add_argument("--figures", help="folder for the figures (PNG and PDF)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    tags = dict(t.split("=", 1) for t in args.tag)
    if args.stage == "evaluate":
        tags.setdefault("model", args.name)
    params = {k: v for k, v in vars(args).items() if k not in ("fn", "tag", "rule")}
    try:
        with stage_run(args.stage, params, rule=args.rule, tags=tags) as run:
            args.fn(args, run)
    except (schemas.DataError, FileNotFoundError, ValueError, LookupError) as err:
        print(f"embedlab {args.stage}: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
