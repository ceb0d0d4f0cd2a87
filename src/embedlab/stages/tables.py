"""``embedlab tables``: paper tables, figures and the study page from MLflow evaluate runs.

Config section ``tables``. The models are the scores files given with ``--evals`` (named by
their stem); each is read from the MLflow run that wrote that file.
"""

import argparse
import re
from pathlib import Path

from embedlab.atomic import atomic_write, write_text
from embedlab.errors import SettingError
from embedlab.settings import add_arguments as add_settings
from embedlab.settings import from_args
from embedlab.settings.tables import TablesSettings
from embedlab.tracking import StageRun, experiment_name

HELP = "paper tables from MLflow evaluate runs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--evals", nargs="+", required=True, help="scores parquet per model")
    for name, what in [
        ("md", "Markdown table"),
        ("tex", "LaTeX (booktabs) table"),
        ("csv", "CSV of the same values"),
        ("grouped-md", "mean ± std over seeds (Markdown)"),
        ("grouped-tex", "mean ± std over seeds (LaTeX)"),
        ("grouped-html", "mean ± std over seeds (HTML)"),
        ("grouped-csv", "mean and std over seeds (CSV)"),
        ("paired-md", "paired comparisons over seeds (t)"),
    ]:
        parser.add_argument(f"--{name}", required=True, help=f"{what} to write")
    parser.add_argument("--study", help="Markdown page of the study (tables, figures, provenance)")
    parser.add_argument("--figures", help="folder for the figures (PNG and PDF)")
    add_settings(parser, TablesSettings)


def run(args: argparse.Namespace, tracker: StageRun) -> None:
    from embedlab.tables import fetch_scores, to_latex, to_markdown
    from embedlab.tables.grouped import (
        BEYOND,
        beyond_comparisons_markdown,
        beyond_markdown,
        comparisons,
        comparisons_markdown,
        group,
        grouped_html,
        grouped_latex,
        grouped_markdown,
        load_reference,
    )

    s: TablesSettings = from_args(TablesSettings, args)
    made = {Path(p).stem: p for p in args.evals}
    reference = load_reference(s.reference) if s.reference else []
    scores = fetch_scores(list(made), s.experiments, made)
    versions = _code_versions(scores, s.allow_mixed_versions, tracker)
    grouped = group(scores)
    paired = comparisons(scores, extra=list(s.compare), columns=["Avg", *BEYOND])
    parts = {  # the page's sections beyond the STS table
        "paired": comparisons_markdown(paired),
        "beyond": beyond_markdown(grouped),
        "beyond paired": beyond_comparisons_markdown(paired),
    }
    outputs = {
        args.md: to_markdown(scores),
        args.tex: to_latex(scores),
        args.grouped_md: grouped_markdown(grouped, reference),
        args.grouped_tex: grouped_latex(grouped, reference),
        args.grouped_html: grouped_html(grouped, reference),
        args.paired_md: "\n".join(filter(None, [parts["paired"], parts["beyond paired"]])),
    }
    for path, text in outputs.items():
        write_text(path, text)
    atomic_write(args.csv, scores.write_csv)
    atomic_write(args.grouped_csv, grouped.write_csv)
    for path in [*outputs, args.csv, args.grouped_csv]:
        tracker.log_artifact(path, "tables")
    if args.figures:
        _figures(scores, grouped, list(made), Path(args.figures), tracker)
    for r in paired:
        score = "" if r["score"] == "Avg" else f".{r['score']}"  # the STS Avg: no suffix
        key = f"paired.{r['a']}-{r['b']}.bs{r['batch_size']}-{r['b_batch_size']}{score}"
        key = re.sub(r"[^\w\-. :/]", "/", key)  # MLflow's metric-name alphabet ("·" is not)
        tracker.log_metrics({f"{key}.{k}": r[k] for k in ("diff", "low", "high", "p")})
    if args.study:
        _study(args, s, list(made), outputs, parts, versions, tracker)
    print(to_markdown(scores), outputs[args.grouped_md], outputs[args.paired_md], sep="\n")


def _figures(scores, grouped, models: list[str], folder: Path, tracker: StageRun) -> None:
    from embedlab.tables import figures
    from embedlab.tables.sts import fetch_similarity_histograms

    made = figures.avg_vs_batch(grouped, folder / "avg_vs_batch")
    made += figures.alignment_uniformity(scores, folder / "alignment_uniformity")
    made += figures.similarity_histograms(
        fetch_similarity_histograms(models), folder / "in_batch_similarity"
    )
    for path in made:
        tracker.log_artifact(path, "figures")


def _code_versions(scores, allow_mixed: bool, tracker: StageRun) -> list[dict]:
    """The code versions behind the evaluate runs read (``tables.study.code_versions``); a
    stage whose runs mix versions stops the stage unless ``allow_mixed``, naming the models."""
    import json

    from embedlab.tables.study import code_versions

    lineages = dict(zip(scores["model"], map(json.loads, scores["lineage"]), strict=True))
    versions = code_versions(lineages)
    tracker.log_metrics({"code_versions": len(versions)})
    mixed = [r for r in versions if r["mixed"]]
    if mixed and not allow_mixed:
        lines = [
            f"  {r['stage']} {r['version']}: {r['runs']} run(s), e.g. {r['models'][:3]}"
            for r in mixed
        ]
        raise SettingError(
            "tables: the runs behind this page were made by different code versions\n"
            + "\n".join(lines)
            + "\nrerun the stale jobs (snakemake reruns a job whose stage code changed; "
            "--forcerun <rule> forces one), or set tables.allow_mixed_versions: true to "
            "write the page with the mix marked in bold"
        )
    return versions


def _study(
    args,
    s: TablesSettings,
    models: list[str],
    outputs: dict,
    parts: dict,
    versions: list,
    tracker: StageRun,
) -> None:
    from embedlab.contracts import RUN
    from embedlab.page import page
    from embedlab.tables.mining import fetch_mining, mining_markdown
    from embedlab.tables.study import synthesis_markdown

    sections = {
        "STS (Spearman × 100, test sets; mean ± std over seeds)": outputs[args.grouped_md],
        "Paired comparisons (the seed is the unit: paired t over seeds)": parts["paired"],
    }
    if parts["beyond"]:
        heading = (
            "Beyond STS (× 100, test sets; mean ± std over seeds): retrieval nDCG@10 and "
            "Recall@10, pair classification AP"
        )
        sections[heading] = parts["beyond"]
        heading = "Paired comparisons beyond STS (difference [paired t 95% interval] seeds A ahead)"
        sections[heading] = parts["beyond paired"]
    experiments = s.experiments or [experiment_name()]
    sections["Training data (from the synthesize runs)"] = synthesis_markdown(experiments)
    mining = fetch_mining(experiments)
    if mining.height:
        miners = [m[1] for m in map(RUN.match, models) if m]
        heading = "In-batch hardness and false negatives (teacher cosine; from the mine runs)"
        sections[heading] = mining_markdown(mining, order=list(dict.fromkeys(miners)))
    study = Path(args.study)
    pngs = sorted(Path(args.figures).glob("*.png")) if args.figures else []
    figures = [str(p.relative_to(study.parent)) for p in pngs if study.parent in p.parents]
    title = s.title or experiments[0]
    write_text(study, page(title, sections, figures, experiments, versions=versions))
    tracker.log_artifact(study, "tables")
