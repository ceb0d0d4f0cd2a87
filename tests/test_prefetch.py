import json

from embedlab import prefetch, resolve
from embedlab.resolve import resolve_file, resolve_model

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def test_stage_copies_models_and_data_that_then_resolve_offline(mirror, tmp_path, monkeypatch):
    out = tmp_path / "resources"
    manifest = prefetch.stage(
        [MINILM], ["sts/STS16-en-test", "corpus/wordnet-examples.txt"], out, [mirror]
    )
    assert set(manifest) == {MINILM, "sts/STS16-en-test", "corpus/wordnet-examples.txt"}
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert (out / "models" / MINILM / "config.json").exists()
    staged = out / "corpus/wordnet-examples.txt"
    assert staged.read_bytes() == (mirror / "corpus/wordnet-examples.txt").read_bytes()
    # a compute node with no package and no shared mirror finds everything in the staging folder
    monkeypatch.setattr(resolve, "PACKAGED", {})
    found = resolve_model(MINILM, [out])
    assert found.where == "mirror" and found.path == str(out / "models" / MINILM)
    assert resolve_file("sts/STS16-en-test", [out]) == out / "sts/STS16-en-test"
    # staging again copies nothing
    before = staged.stat().st_mtime_ns
    again = prefetch.stage([MINILM], ["corpus/wordnet-examples.txt"], out, [])  # offline
    assert {v["from"] for v in again.values()} == {"staged before"}
    assert staged.stat().st_mtime_ns == before
    assert not list(out.rglob("*.partial"))


def test_local_model_paths_are_not_copied(tiny_bert, tmp_path):
    manifest = prefetch.stage([str(tiny_bert)], [], tmp_path / "r", [])
    assert manifest[str(tiny_bert)]["from"] == "path"
    assert not (tmp_path / "r" / "models").exists()
