"""The check behind `make verify-studies`: a rerun slice against a study's committed scores."""

import polars as pl

from embedlab.verify import differences, main, published_scores


def table(**scores: list) -> pl.DataFrame:
    models = ["random-bs64-seed0", "b3-bs64-seed0"]
    return pl.DataFrame({"model": models, "run_id": ["r1", "r2"], **scores})


def test_a_rerun_that_matches_to_the_pages_precision_passes(tmp_path):
    published = table(STS12=[61.234, 62.5], Avg=[66.8, 66.9])
    rerun = table(STS12=[61.2341, 62.5], Avg=[66.8, 66.9]).with_columns(run_id=pl.lit("other"))
    assert differences(published_scores(rerun), published_scores(published)) == []
    published.write_csv(tmp_path / "p.csv")
    rerun.write_csv(tmp_path / "r.csv")
    assert main([str(tmp_path / "r.csv"), str(tmp_path / "p.csv")]) == 0


def test_every_cell_that_differs_is_named(tmp_path, capsys):
    published = table(STS12=[61.2, 62.5], Avg=[66.8, 66.9])
    rerun = table(STS12=[61.2, 62.6], Avg=[66.8, 66.95])
    found = differences(published_scores(rerun), published_scores(published))
    assert found == [
        "b3-bs64-seed0 / STS12: rerun 62.6, published 62.5",
        "b3-bs64-seed0 / Avg: rerun 66.95, published 66.9",
    ]
    extra = pl.DataFrame({"model": ["kmeans-bs64-seed0"], "STS12": [1.0], "Avg": [2.0]})
    assert differences(extra, published_scores(published)) == [
        "kmeans-bs64-seed0: not in the published scores"
    ]
    published.write_csv(tmp_path / "p.csv")
    rerun.write_csv(tmp_path / "r.csv")
    assert main([str(tmp_path / "r.csv"), str(tmp_path / "p.csv")]) == 1
    assert "2 of 4 cells differ" in capsys.readouterr().out


def test_a_task_added_since_is_not_compared_but_a_published_one_missing_fails():
    published = published_scores(table(STS12=[61.2, 62.5]))
    newer = published.with_columns(pl.lit(0.5).alias("SICK-pairs AP"))
    assert differences(newer, published) == []
    assert differences(published.drop("STS12"), published) == [
        "random-bs64-seed0 / STS12: not in the rerun",
        "b3-bs64-seed0 / STS12: not in the rerun",
    ]
