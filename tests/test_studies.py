"""The pieces of a study: the dev-only sweep, the mining diagnostics, the study page, the
caches by content, and the study and paper configs resolving offline."""

import subprocess
import sys

import polars as pl
import pytest

from embedlab.embeddings import TeacherView
from embedlab.page import page as study_markdown
from embedlab.tables.mining import mining_markdown, mining_summary

from .conftest import REPO


def test_sweep_chooses_on_dev_and_tries_b3_options_at_the_best_setting(pairs, minilm, mirror):
    from embedlab.evaluate import dev_scorer
    from embedlab.settings.sweep import SweepGrid
    from embedlab.sweep import best_setting, sweep, sweep_page
    from embedlab.train import build_student

    minilm_id = "sentence-transformers/all-MiniLM-L6-v2"
    texts = [*pairs["anchor"], *pairs["positive"]]
    emb = minilm.encode(texts, normalize_embeddings=True)
    view = TeacherView(anchor=emb[: pairs.height], positive=emb[pairs.height :])
    grid = SweepGrid(
        batch_size=16,
        seeds=[0],
        epochs=[1],
        lr=[1e-4, 3e-2],
        temperature=[0.1],
        b3=[{"p": 0, "m": 4, "cluster_size": 4}],
        eval_every=2,
    )
    dev = dev_scorer([mirror])
    table = sweep(
        pairs,
        view,
        grid,
        lambda seed: (build_student("static", minilm_id, seed=seed), None),
        dev,
    )
    assert table.height == 3 and set(table["miner"]) == {"random", "b3"}
    best = best_setting(table)
    top = table.filter(pl.col("miner") == "random").sort("dev_spearman")["dev_spearman"][-1]
    assert best["dev_mean"] == pytest.approx(top)
    b3 = table.filter(pl.col("miner") == "b3").row(0, named=True)
    assert (b3["lr"], b3["temperature"]) == (best["lr"], best["temperature"])
    page = sweep_page(table, "test")
    assert f"Chosen: lr {best['lr']:g}" in page and "| b3 " in page and "commit `" in page


def test_mining_summary_averages_seeds_in_miner_order():
    runs = pl.DataFrame(
        {
            "miner": ["random", "b3", "b3", "random"],
            "bs": [32, 32, 32, 32],
            "seed": [0, 0, 1, 1],
            "hardness": [0.05, 0.30, 0.20, 0.07],
            "random hardness": [0.05, 0.06, 0.06, 0.07],
            "false negatives": [0.001, 0.02, 0.04, 0.003],
            "random false negatives": [0.001, 0.001, 0.001, 0.003],
        }
    )
    summary = mining_summary(runs)
    assert summary["miner"].to_list() == ["random", "b3"]
    assert summary["hardness"].to_list() == pytest.approx([0.06, 0.25])
    assert "| b3 | 32 | 2 | 0.2500 | 0.0600 | 3.0000% |" in mining_markdown(runs)


def test_study_page_names_commit_machine_and_links_figures():
    page = study_markdown("A study", {"STS": "| a |\n"}, ["figures/x.png"], ["exp-a", "exp-b"])
    assert page.startswith("# A study\n")
    assert "`exp-a`, `exp-b`" in page and "commit `" in page and " cores" in page
    assert "## STS\n\n| a |" in page and "![x.png](figures/x.png)" in page


def test_cache_keys_change_with_content(tmp_path):
    from embedlab.cache import content_key, folder_hash

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w.bin").write_bytes(b"abc")
    before = folder_hash(tmp_path / "m")
    assert folder_hash(tmp_path / "m") == before
    (tmp_path / "m" / "w.bin").write_bytes(b"abd")
    assert folder_hash(tmp_path / "m") != before
    assert content_key(1, [2]) == content_key(1, [2]) != content_key(1, [3])


def test_synthesis_is_cached_by_content(tmp_path):
    from embedlab.synth import PromptPool, SynthSettings, synthesize

    from .test_synth_generate import corpus_of, pool_file

    class Echo:
        """A backend that answers every prompt with a fixed rewrite, and counts the calls."""

        name = identity = "echo"
        calls = 0

        def chat(self, conversations, max_new_tokens, sampling=None):
            from embedlab.synth.backends import Completion

            Echo.calls += len(conversations)
            out = []
            for conversation in conversations:
                text = conversation[-1]["content"].split(": ", 1)[1]
                prefix = (
                    "Hard negative: not " if conversation[-1]["content"].startswith("NEG") else ""
                )
                out.append(Completion(prefix + "indeed, " + text.lower(), 5))
            return out

    corpus = corpus_of(["The cat sat on the warm mat.", "A storm hit the coast at night."])
    pool = PromptPool.load(pool_file(tmp_path))
    settings = SynthSettings(n_anchors=2, batch_size=2, teacher_margin=None)
    first = synthesize(corpus, Echo(), pool, settings, tmp_path / "a", cache=tmp_path / "c")
    calls = Echo.calls
    second = synthesize(corpus, Echo(), pool, settings, tmp_path / "b", cache=tmp_path / "c")
    assert Echo.calls == calls and second[2]["cache_hit"] == 1.0  # nothing generated again
    assert first[0].equals(second[0]) and first[1].equals(second[1])
    other = SynthSettings(n_anchors=2, batch_size=2, teacher_margin=None, max_new_tokens=40)
    synthesize(corpus, Echo(), pool, other, tmp_path / "d", cache=tmp_path / "c")
    assert Echo.calls > calls  # another setting is another entry


def _dry_run(*configfiles: str, target: str = "all") -> str:
    import tempfile

    results = tempfile.mkdtemp()  # an empty results folder: every job is planned
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            target,
            "-n",
            "--cores",
            "2",
            "--configfile",
            *configfiles,
            "--config",
            f"results={results}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={
            "PATH": f"{REPO / '.venv' / 'bin'}:/usr/bin:/bin",
            "HF_HUB_OFFLINE": "1",
            "EMBEDLAB_TRACKING_URI": "sqlite:////tmp/embedlab-dry-run.db",
            "HOME": "/tmp",
        },
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


@pytest.mark.parametrize(
    "configs",
    [
        ["config/studies/b3.yaml"],
        *[
            ["config/studies/syncse/base.yaml", f"config/studies/syncse/{s}.yaml"]
            for s in ("gold", "gold-pos", "llm", "llm-pos", "llm-once", "gold-matched")
        ],
        ["config/studies/b3.yaml", "config/studies/b3-resample.yaml"],
        # the slices `make verify-studies` reruns
        ["config/studies/b3.yaml", "config/studies/verify/b3.yaml"],
        [
            "config/studies/b3.yaml",
            "config/studies/b3-resample.yaml",
            "config/studies/verify/b3-resample.yaml",
        ],
        [
            "config/studies/syncse/base.yaml",
            "config/studies/syncse/gold.yaml",
            "config/studies/verify/syncse.yaml",
        ],
        *[
            ["config/studies/transformer/base.yaml", f"config/studies/transformer/{s}.yaml"]
            for s in ("snli", "whole", "steps", "coco")
        ],
        *[
            ["config/studies/paper/b3-transformer.yaml", f"config/studies/paper/b3-transformer/{s}"]
            for s in ("whole.yaml", "steps.yaml")
        ],
    ],
    ids=lambda c: c[-1].split("config/")[1],
)
def test_study_configs_resolve_offline(configs, tmp_path):
    if configs[-1].endswith("gold-matched.yaml"):  # it reads llm.yaml's pairs: stand one in
        (tmp_path / "pairs.parquet").touch()
        extra = tmp_path / "extra.yaml"
        extra.write_text(f"synthesize: {{import: {{match_pairs: {tmp_path}/pairs.parquet}}}}\n")
        configs = [*configs, str(extra)]
    out = _dry_run(*configs)
    assert "rule train:" in out and "rule tables:" in out


def test_b3_study_has_every_cell_and_the_cross_size_comparison():
    out = _dry_run("config/studies/b3.yaml")
    cells = [
        f"{m}-bs{b}-seed{s}"
        for m in ("random", "b3", "kmeans", "hardneg")
        for b in (32, 64, 128, 256, 512)
        for s in range(5)
    ]
    assert all(f"models/{c}" in out for c in cells)
    assert '"a": "b3", "a_bs": 64, "b": "random", "b_bs": 512' in out


def test_study3_plans_whole_batch_clusters_and_equal_steps():
    """Study 3's arms: b3 with cluster_size "batch" at 32 and 128; random at 128 for 4 epochs,
    as many steps as 32 in one (1,033 triplets: 32 batches of 32, 8 of 128 an epoch)."""
    base = "config/studies/transformer/base.yaml"
    whole = _dry_run(base, "config/studies/transformer/whole.yaml")
    mines = [x for x in whole.splitlines() if " mine --miner " in x]
    assert len(mines) == 2 and all('"cluster_size": "batch"' in x for x in mines)
    assert {x.split("--batch-size ")[1].split()[0] for x in mines} == {"32", "128"}
    (steps,) = [
        x
        for x in _dry_run(base, "config/studies/transformer/steps.yaml").splitlines()
        if " mine --miner " in x
    ]
    assert "--miner random" in steps and "--batch-size 128" in steps and "--epochs 4" in steps


@pytest.mark.parametrize(
    "config", sorted(p.name for p in (REPO / "config/studies/paper").glob("*.yaml"))
)
def test_paper_configs_resolve_offline(config):
    """The published settings: the DAG resolves without a network (hub data is read by the
    jobs, never declared as a local input), with the paper's reference rows beside it."""
    out = _dry_run(f"config/studies/paper/{config}")
    assert "rule train:" in out and "--student transformer" in out
    assert "--reference config/reference/" in out


def test_the_sweep_tunes_the_student_that_is_then_trained(tmp_path, mirror):
    """The sweep rule passes the train section's student keys (a paper config's pooling, say),
    and every trial builds the student and head the train stage builds from them."""
    import shlex

    import yaml
    from torch import nn

    from embedlab.cli import parser
    from embedlab.settings import from_args
    from embedlab.settings.sweep import SweepSettings
    from embedlab.train.student import student_from, train_head

    student = {"student": "transformer", "pooling": "cls_mlp", "max_length": 24}
    config = tmp_path / "student.yaml"
    config.write_text(yaml.safe_dump({"train": student}))
    out = _dry_run(str(config), target="sweep")
    (line,) = [x for x in out.splitlines() if " sweep --pairs " in x]
    words = shlex.split(line.split("embedlab", 1)[1])
    settings = from_args(SweepSettings, parser(["sweep"]).parse_args(words[: words.index(">")]))
    assert {k: getattr(settings, k) for k in student} == student
    model = student_from(settings, [mirror], seed=0)
    assert model.max_seq_length == 24 and model[1].pooling_mode == "cls"
    assert isinstance(train_head(model, settings.pooling), nn.Sequential)


def test_unlabeled_mode_trains_on_the_corpus_itself():
    from embedlab import schemas
    from embedlab.corpus.build import unlabeled_pairs

    corpus = pl.DataFrame({"id": ["a", "b"], "text": ["one two", "three four"], "source": "w"})
    pairs = unlabeled_pairs(corpus)
    schemas.validate(pairs, schemas.Pairs, "pairs")
    assert pairs["positive"].is_null().all() and pairs["anchor"].to_list() == [
        "one two",
        "three four",
    ]
