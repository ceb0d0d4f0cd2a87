"""The conda environments are rendered from pyproject.toml's pins, and GPU jobs get CUDA's."""

import tomllib

from .conftest import REPO, load_script


def test_the_environment_files_are_what_render_writes_from_pyproject():
    stale = [
        str(p.name)
        for p, text in load_script("envs/render.py").files().items()
        if p.read_text() != text
    ]
    assert not stale, f"rerun `python envs/render.py`: {stale} differ from pyproject.toml's pins"


def test_only_the_cuda_environment_takes_pypis_cuda_build_and_both_pin_everything():
    cpu = (REPO / "envs/embedlab.yaml").read_text()
    cuda = (REPO / "envs/embedlab-cuda.yaml").read_text()
    assert "download.pytorch.org/whl/cpu" in cpu and "whl/cpu" not in cuda
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for pin in [*project["dependencies"], *project["optional-dependencies"]["workflow"]]:
        assert f"- {pin}\n" in cpu and f"- {pin}\n" in cuda, pin
    assert "snakemake" not in " ".join(project["dependencies"])  # an extra, not a dependency
