"""The README's speed figures are the benchmark records, rendered; none is typed by hand."""

import json

from .conftest import REPO, load_script


def test_the_readme_speed_section_is_the_records_rendered():
    readme = load_script("benchmarks/readme.py")
    assert readme.current(readme.README.read_text()) == readme.render(), (
        "README.md's benchmark section differs from benchmarks/results: "
        "run .venv/bin/python benchmarks/readme.py"
    )


def test_every_record_names_its_peer_commit_machine_command_and_runs():
    records = sorted((REPO / "benchmarks/results").glob("*.json"))
    assert records, "no benchmark records"
    for path in records:
        r = json.loads(path.read_text())
        assert r["commit"] and r["machine"] and r["command"].startswith("python benchmarks/")
        if r.get("kind") in ("scale", "yield"):  # a measurement by size or count, no peer
            assert r["rows"], path.name
            continue
        assert r["peer"] in r["sides"] and r["ours"] in r["sides"], path.name
        for side in r["sides"].values():
            assert len(side["runs"]) >= 3, f"{path.name}: fewer than 3 runs of a side"
        ours, peer = r["sides"][r["ours"]]["median"], r["sides"][r["peer"]]["median"]
        expected = ours / peer if r["higher_is_better"] else peer / ours
        assert abs(r["ratio"] - expected) < 1e-9 * expected, path.name
