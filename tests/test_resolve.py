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


def test_a_hub_download_takes_the_revision_and_only_the_files_a_model_folder_needs(
    tmp_path, monkeypatch
):
    """The hub client is replaced (no network here); what embedlab asks of it is checked."""
    import huggingface_hub

    from embedlab import resolve

    calls = []

    def snapshot_download(repo, revision=None, allow_patterns=None):
        calls.append((repo, revision, allow_patterns))
        folder = tmp_path / "snapshots" / "abc123"
        folder.mkdir(parents=True, exist_ok=True)
        if "*.bin" in allow_patterns:
            (folder / "pytorch_model.bin").write_bytes(b"w")
        return str(folder)

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    found = resolve_model("org/old-model@v1.0")
    assert found.where == "hub" and found.name == "org/old-model"
    (repo, revision, first), (_, _, second) = calls  # no safetensors: asked again for .bin
    assert (repo, revision) == ("org/old-model", "v1.0")
    assert "*.safetensors" in first and not any("bin" in p or "onnx" in p for p in first)
    assert "*.bin" in second
    assert resolve.RESOLVED["org/old-model@v1.0"].endswith("snapshots/abc123")


def test_a_revision_on_a_packaged_model_still_resolves_offline_and_is_recorded():
    from embedlab import resolve

    found = resolve_model("sentence-transformers/all-MiniLM-L6-v2@main")
    assert found.where == "packaged"
    assert resolve.RESOLVED["sentence-transformers/all-MiniLM-L6-v2@main"].startswith("packaged:")
