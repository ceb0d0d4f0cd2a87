"""The stages called as `embedlab <stage>` would call them: what they export and log, and how
their errors reach the user."""

import json

import mlflow
import pytest

from embedlab import stages
from embedlab.cli import main, parser
from embedlab.tracking import ensure_experiment


def _runs():
    return mlflow.search_runs([ensure_experiment()], output_format="list")


def test_the_untrained_student_is_exported_whole_with_a_card_that_names_its_provenance(
    tmp_path, mirror
):
    out = tmp_path / "models" / "student-init"
    args = ["train", "--out", str(out), "--mirror", str(mirror), "--license", "mit"]
    assert main([*args, "--language", "en", "de"]) == 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["student-init"]  # no temp folder
    card = (out / "README.md").read_text()
    assert "- **Base model:** `sentence-transformers/all-MiniLM-L6-v2` (student `static`)" in card
    assert "inf tokens" not in card and "Maximum Sequence Length:** no limit" in card
    assert "Training Dataset:** none (the untrained student)" in card
    front = card.split("---")[1]
    assert "license: mit" in front and "- de" in front
    (run,) = _runs()
    assert run.data.params["license"] == "mit" and run.data.params["eval_every"] == "10"
    where = run.data.tags["resolved.sentence-transformers/all-MiniLM-L6-v2"]
    assert where.startswith("packaged:")  # where the base model came from


def test_a_users_mistake_is_one_line_and_a_bug_keeps_its_traceback(tmp_path, capsys, monkeypatch):
    source = tmp_path / "s.txt"
    source.write_text("one fine sentence here\n")
    args = ["corpus", "--out", str(tmp_path / "c.parquet")]
    args += ["--sources", json.dumps({"path": str(source), "format": "xml"})]
    assert main(args) == 1  # an unknown format: the user's to fix
    assert "error:" in capsys.readouterr().err

    def broken(*a, **k):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("embedlab.stages.corpus.build_corpus", broken)
    args[-1] = json.dumps({"path": str(source)})
    with pytest.raises(ZeroDivisionError):  # not swallowed into an "error:" line
        main(args)
    assert [r.info.status for r in _runs()] == ["FAILED", "FAILED"]


@pytest.mark.parametrize("name", stages.STAGES)
def test_every_stage_has_help_and_documented_flags(name, capsys):
    with pytest.raises(SystemExit) as done:
        main([name, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    (sub,) = [a for a in parser([name])._actions if a.dest == "stage"]
    flags = [a for a in sub.choices[name]._actions if a.option_strings and a.dest != "help"]
    assert "--mirror" in text
    for action in flags:  # every flag is listed with what it means
        assert action.option_strings[0] in text and action.help, (name, action.dest)
    settings = [a for a in flags if a.default is not None and a.dest != "mirror"]
    for action in settings:  # and a flag with a default shows it
        assert "(default:" in (action.help or ""), (name, action.dest)


def test_evaluate_scores_several_models_in_one_process_one_run_each(tmp_path, mirror):
    from embedlab import schemas

    model = str(tmp_path / "student-init")  # the untrained static student: quick to score
    assert main(["train", "--out", model, "--mirror", str(mirror)]) == 0
    outs = [str(tmp_path / f"{n}.parquet") for n in ("a", "b")]
    flags = ["--mirror", str(mirror), "--tasks", "STS16", "--no-geometry", "--retrieval", "--pairs"]
    code = main(["evaluate", "--model", model, model, "--name", "a", "b", "--out", *outs, *flags])
    assert code == 0
    a, b = (schemas.read(o, schemas.Scores) for o in outs)
    assert a.equals(b) and a.height == 4  # STS16 and Avg: spearman and spearman_wmean
    runs = [r for r in _runs() if r.data.tags["stage"] == "evaluate"]
    assert sorted(r.data.tags["wildcard.model"] for r in runs) == ["a", "b"]
    with pytest.raises(SystemExit, match="one value per model"):
        main(["evaluate", "--model", model, "--name", "a", "b", "--out", outs[0], *flags])
