import numpy as np
import polars as pl
import pytest

from embedlab.errors import SettingError
from embedlab.tables.grouped import (
    TASKS,
    comparisons,
    comparisons_markdown,
    group,
    grouped_latex,
    grouped_markdown,
    paired_seeds,
)
from embedlab.tables.sts import COLUMNS

from .conftest import REPO


def _scores(shift: float = 1.0, noise: float = 0.0) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    rows = [{"model": "teacher", **{c: 80.0 for c in COLUMNS.values()}}]
    for seed in range(3):
        base = {c: 50.0 + seed + i for i, c in enumerate(TASKS)}
        for method, plus in (("random", 0.0), ("b3", shift)):
            row = {c: v + plus + noise * rng.normal() for c, v in base.items()}
            row["Avg"] = float(np.mean(list(row.values())))
            rows.append({"model": f"{method}-bs32-seed{seed}", **row})
    return pl.DataFrame(rows)


def test_group_gives_mean_and_sample_std_over_seeds():
    scores = _scores()
    grouped = group(scores)
    assert grouped["group"].to_list() == ["teacher", "random, B=32", "b3, B=32"]
    assert grouped["n"].to_list() == [1, 3, 3]
    sts12 = scores.filter(pl.col("model").str.starts_with("b3-"))["STS12"].to_numpy()
    b3 = grouped.row(2, named=True)
    assert b3["STS12"] == pytest.approx(sts12.mean())
    assert b3["STS12 std"] == pytest.approx(sts12.std(ddof=1))
    md = grouped_markdown(grouped)
    assert "| b3, B=32 (3 seeds) |" in md and " ± 1.00" in md
    assert "| teacher | **80.00** |" in md  # the best mean of a column is bold
    assert r"$\pm$" in grouped_latex(grouped) and r"\toprule" in grouped_latex(grouped)


def test_paired_seeds_uses_the_seed_as_the_unit():
    exact = paired_seeds(_scores(shift=1.0), "b3", "random", 32)
    assert (exact["seeds"], exact["wins"]) == (3, 3)
    assert exact["diff"] == pytest.approx(1.0)
    assert exact["low"] == pytest.approx(1.0) and exact["high"] == pytest.approx(1.0)
    noisy = _scores(shift=0.5, noise=1.0)
    result = paired_seeds(noisy, "b3", "random", 32)
    avg = noisy.filter(pl.col("model").str.contains("seed")).sort("model")["Avg"].to_numpy()
    diffs = avg[:3] - avg[3:]  # b3 seeds 0-2 minus random seeds 0-2 (sorted by name)
    from scipy import stats

    assert result["diff"] == pytest.approx(diffs.mean())
    half = stats.t.ppf(0.975, 2) * diffs.std(ddof=1) / np.sqrt(3)
    assert result["high"] - result["low"] == pytest.approx(2 * half)
    assert result["p"] == pytest.approx(stats.ttest_1samp(diffs, 0.0).pvalue)
    with pytest.raises(SettingError, match="'kmeans'"):
        paired_seeds(_scores(), "kmeans", "random", 32)


def test_comparisons_are_against_random_per_batch_size_and_across_sizes():
    results = comparisons(_scores())
    assert [(r["a"], r["b"], r["batch_size"]) for r in results] == [("b3", "random", 32)]
    assert "| b3 − random | 32 | 3 | +1.00 | [+1.00, +1.00] |" in comparisons_markdown(results)
    wide = pl.concat(
        [
            _scores(),
            _scores()
            .filter(pl.col("model").str.starts_with("random"))
            .with_columns(pl.col("model").str.replace("bs32", "bs512"), pl.col("Avg") + 2.0),
        ]
    )
    cross = comparisons(wide, extra=[{"a": "b3", "a_bs": 32, "b": "random", "b_bs": 512}])[-1]
    assert (cross["batch_size"], cross["b_batch_size"]) == (32, 512)
    assert cross["diff"] == pytest.approx(-1.0)
    assert "| b3 − random | 32 vs 512 | 3 | -1.00 |" in comparisons_markdown([cross])


def test_sources_are_compared_with_the_first_source():
    gold, llm = _scores(), _scores(shift=0.0)
    rows = [
        gold.filter(pl.col("model").str.contains("random")).with_columns(
            ("gold · " + pl.col("model")).alias("model")
        ),
        llm.filter(pl.col("model").str.contains("random")).with_columns(
            ("llm · " + pl.col("model")).alias("model"), pl.col("Avg") - 3.0
        ),
    ]
    results = comparisons(pl.concat(rows))
    assert [(r["a"], r["b"]) for r in results] == [("llm · random", "gold · random")]
    assert results[0]["diff"] == pytest.approx(-3.0)


def test_reference_rows_are_shown_apart_and_never_bold(tmp_path):
    from embedlab.schemas import DataError
    from embedlab.tables.grouped import load_reference

    reference = load_reference(REPO / "config/reference/sts.yaml")
    assert {r["name"] for r in reference} >= {"unsup-SimCSE-BERT-base", "sup-SimCSE-BERT-base"}
    md = grouped_markdown(group(_scores()), reference)
    measured, reported = md.split("*reported in papers*")
    assert "SimCSE" not in measured and "| teacher | **80.00** |" in measured
    assert "84.25" in reported and "**" not in reported  # sup-SimCSE's STS-B, not bold
    assert r"\midrule" in grouped_latex(group(_scores()), reference)
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {name: x, source: y, scores: {STS12: 1.0}}\n")
    with pytest.raises(DataError, match="'x' lacks columns"):
        load_reference(bad)


def test_figures_are_written_as_png_and_pdf(tmp_path):
    from embedlab.tables import figures

    scores = _scores().with_columns(
        alignment=pl.Series([0.2, 0.3, 0.25, 0.31, 0.26, 0.32, 0.27]),
        uniformity=pl.Series([-3.0, -2.0, -2.2, -2.1, -2.3, -2.05, -2.25]),
    )
    made = figures.avg_vs_batch(group(scores), tmp_path / "f" / "avg")
    made += figures.alignment_uniformity(scores, tmp_path / "f" / "au")
    assert [p.name for p in made] == ["avg.png", "avg.pdf", "au.png", "au.pdf"]
    for path in made:
        head = path.read_bytes()[:5]
        assert head == (b"\x89PNG\r" if path.suffix == ".png" else b"%PDF-")
        assert path.stat().st_size > 5000


def test_tables_and_figures_draw_what_exists_when_tasks_are_partial(tmp_path):
    """evaluate restricted to some tasks: no STS12 anywhere, no Avg for the teacher (its axhline
    used to crash the tables rule at the end of a whole grid)."""
    from embedlab.tables import figures

    scores = _scores().with_columns(
        pl.lit(None, pl.Float64).alias("STS12"),
        pl.when(pl.col("model") == "teacher").then(None).otherwise(pl.col("Avg")).alias("Avg"),
    )
    grouped = group(scores)
    md = grouped_markdown(grouped, [])
    teacher = next(line for line in md.splitlines() if line.startswith("| teacher"))
    assert teacher.split(" | ")[1] == "–" and teacher.endswith("| – |")  # no STS12, no Avg
    assert grouped.filter(pl.col("method") == "teacher")["Avg"].to_list() == [None]
    made = figures.avg_vs_batch(grouped, tmp_path / "avg")
    assert [p.name for p in made] == ["avg.png", "avg.pdf"]


def test_tasks_beyond_sts_are_grouped_and_compared_with_the_same_paired_protocol():
    from embedlab.tables.grouped import beyond_comparisons_markdown, beyond_markdown

    scores = _scores(shift=1.0)
    # SICK-E AP: b3 ahead by 2 points in every seed; COCO scored by no run
    sick = [70.0 + (2.0 if m.startswith("b3") else 0.0) + i for i, m in enumerate(scores["model"])]
    scores = scores.with_columns(
        pl.Series("SICK-E AP", sick), pl.lit(None, pl.Float64).alias("COCO nDCG@10")
    )
    results = comparisons(scores, columns=["Avg", "SICK-E AP", "COCO nDCG@10"])
    assert [r["score"] for r in results] == ["Avg", "SICK-E AP"]  # a task no run scored: none
    sick_row = results[1]
    # pairs by seed: rows alternate random, b3 per seed, so b3's AP is 2 + 1 (its row) ahead
    assert (sick_row["a"], sick_row["b"], sick_row["seeds"]) == ("b3", "random", 3)
    assert sick_row["diff"] == pytest.approx(3.0) and sick_row["wins"] == 3
    assert "SICK-E" not in comparisons_markdown(results)  # the STS table: the Avg only
    md = beyond_comparisons_markdown(results)
    assert md.splitlines()[0] == "| A − B | batch sizes | seeds | SICK-E AP |"
    assert "| b3 − random | 32 | 3 | +3.00 [+3.00, +3.00] 3/3 |" in md
    grouped = group(scores)
    assert "| b3, B=32 (3 seeds) | **76.00** ± 2.00 |" in beyond_markdown(grouped)  # 74, 76, 78
    assert beyond_markdown(group(_scores())) == ""  # STS only: no section
