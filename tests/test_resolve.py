import pytest

from embedlab.resolve import NotFound, resolve_file, resolve_model


def test_packaged_models_resolve_offline():
    teacher = resolve_model("sentence-transformers/all-MiniLM-L6-v2")
    assert teacher.where == "packaged"
    llm = resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert llm.where == "packaged" and llm.gguf_file.endswith(".gguf")


def test_explicit_path_wins(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    found = resolve_model(str(tmp_path))
    assert (found.where, found.path) == ("path", str(tmp_path))


def test_mirror_folder(tmp_path):
    (tmp_path / "org" / "model").mkdir(parents=True)
    found = resolve_model("org/model", mirrors=[tmp_path])
    assert found.where == "mirror" and found.path == str(tmp_path / "org" / "model")


def test_not_found_lists_every_place(tmp_path):
    with pytest.raises(NotFound) as err:
        resolve_model("nobody/nothing", mirrors=[tmp_path])
    message = str(err.value)
    assert "local path" in message and str(tmp_path / "nobody" / "nothing") in message
    assert "hub (skipped" in message  # tests run with HF_HUB_OFFLINE=1


def test_data_file_from_mirror(mirror, tmp_path):
    assert resolve_file("corpus/wordnet-examples.txt", [tmp_path, mirror]).exists()
    with pytest.raises(NotFound, match="mirror"):
        resolve_file("corpus/none.txt", [mirror])
