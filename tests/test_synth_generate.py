"""Synthesis: prompt pools, the four modes, the filters, the HTTP backend against a real local
server, and kill -9 safety with the real packaged LLM."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import mlflow
import polars as pl
import pytest
import yaml

from embedlab import schemas
from embedlab.ids import stable_id
from embedlab.synth import Filters, PromptPool, SynthSettings, import_pairs, synthesize
from embedlab.synth.backends import BackendError, Sampling
from embedlab.synth.generate import Teacher
from embedlab.synth.openai_http import OpenAIBackend

from .chat_server import ChatServer
from .conftest import REPO, TIMEOUT_S

ANSWERS = {  # anchor -> (positive, hard negative) the scripted server gives
    "The children played in the garden.": (
        "Kids were playing outside in the yard.",
        "The children slept in the house.",
    ),
    "She poured the milk into a glass.": (
        "Milk was poured into a glass by her.",
        "She poured the milk into a glass.",  # a copy: rejected
    ),
    "He sold his old car last week.": (
        "Last week he got rid of his old vehicle by selling it.",
        "He sold his old car last week!",  # a copy: rejected
    ),
    "The committee approved the new budget.": ("```{}```", "The committee rejected it."),
    "A man is playing a guitar on the street.": (
        "Sorry, I cannot help with that.",
        "A man is playing a piano at home.",
    ),
    "The train to Boston was delayed by two hours.": (
        "Sorry, I cannot help with that.",  # the same stock answer again: duplicate
        "The train to Boston left on time.",
    ),
}


def scripted(messages: list[dict]) -> str:
    last = messages[-1]["content"]
    kind, _, text = last.partition(": ")
    if kind == "POS":
        return json.dumps({"positive": ANSWERS[text][0]})
    if kind == "NEG":
        return f"Here you go.\nHard negative: {ANSWERS[text][1]}"
    if kind in ("QUESTION", "CLAIM", "KEYWORDS"):
        return {"QUESTION": "Where did the children play?", "CLAIM": text, "KEYWORDS": "x"}[kind]
    if kind == "WRITE":
        return "The museum opens at nine."
    if last.startswith("On a scale from 0"):
        return "I would say 4.5 out of 5."
    raise AssertionError(last)


def pool_file(tmp_path, mode: str = "partial") -> str:
    ex = {"anchor": "A b c.", "positive": "B c a.", "hard_negative": "Not a b c."}
    roles = {
        "positive": [{"id": "p1", "text": "POS: {anchor}"}],
        "hard_negative": [{"id": "n1", "text": "NEG: {anchor}"}],
    }
    data = {"id": f"test-{mode}", "mode": mode, "system": "s", "shots": 1}
    if mode == "query":
        roles = {k: [{"id": k, "text": k.upper() + ": {anchor}"}] for k in ("question", "claim")}
        roles["keywords"] = [{"id": "k", "text": "KEYWORDS: {anchor}"}]
        ex = {"anchor": "A b c.", "question": "a?", "claim": "b.", "keywords": "c"}
    if mode == "scratch":
        roles["sentence"] = [{"id": "s1", "text": "WRITE: {genre} {topic}"}]
        data |= {"genres": ["news"], "topics": ["art"]}
    path = tmp_path / f"{mode}.yaml"
    path.write_text(yaml.safe_dump(data | {"roles": roles, "exemplars": [ex, ex]}))
    return str(path)


def corpus_of(texts: list[str]) -> pl.DataFrame:
    ids = [stable_id(t, "t") for t in texts]
    return pl.DataFrame({"id": ids, "text": texts, "source": ["t"] * len(texts)})


def test_prompt_pool_samples_per_unit_with_the_seed():
    pool = PromptPool.load(REPO / "config/prompts/partial.yaml")
    a = pool.messages("positive", "The sky is blue.", unit="u1", seed=0)
    assert a == pool.messages("positive", "The sky is blue.", unit="u1", seed=0)
    turns, prompt_id = a
    assert [t["role"] for t in turns] == ["system"] + ["user", "assistant"] * pool.shots + ["user"]
    assert turns[-1]["content"].endswith("Sentence: The sky is blue.")
    assert prompt_id.startswith("partial-v3/p")
    ids = {pool.messages("positive", "x", unit=f"u{i}", seed=0)[1] for i in range(40)}
    assert len(ids) > 10  # variants and exemplars really vary across rows
    other_seed = [pool.messages("positive", "x", unit=f"u{i}", seed=1)[1] for i in range(40)]
    assert other_seed != [
        pool.messages("positive", "x", unit=f"u{i}", seed=0)[1] for i in range(40)
    ]
    for mode in ("scratch", "query"):
        assert PromptPool.load(REPO / f"config/prompts/{mode}.yaml").mode == mode


def test_what_a_seed_draws_does_not_change_and_a_later_attempt_draws_afresh():
    """A seed's first-attempt prompts are pinned: a change in how they are drawn would silently
    change every synthesized table made with that seed (it happened once, in a refactor).
    The values are those of commit a5e3c87, before rows were asked again."""
    pool = PromptPool.load(REPO / "config/prompts/partial.yaml")
    drawn = [
        pool.messages(role, "The cat sleeps.", f"u{i}", seed)[1]
        for i in range(2)
        for role in ("positive", "hard_negative")
        for seed in (0, 7)
    ]
    assert drawn[:6] == [
        "partial-v3/p1/0.1",
        "partial-v3/p1/3.2",
        "partial-v3/n1/3.0",
        "partial-v3/n1/0.3",
        "partial-v3/p3/0.5",
        "partial-v3/p1/4.0",
    ]
    later = [pool.messages("positive", "x", f"u{i}", 0, attempt=2)[1] for i in range(40)]
    assert later != [pool.messages("positive", "x", f"u{i}", 0)[1] for i in range(40)]


def test_prompt_pool_errors_name_the_file_and_key(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("id: x\nmode: partial\nsystem: s\nroles:\n  positive: [{text: 'no slot'}]\n")
    with pytest.raises(
        ValueError, match=r"p\.yaml: roles.positive\[0\] .*: the template has no \{anchor\}"
    ):
        PromptPool.load(path)
    path.write_text("id: x\nmode: nope\nsystem: s\nroles: {}\n")
    with pytest.raises(ValueError, match=r"p\.yaml: mode 'nope'"):
        PromptPool.load(path)


@pytest.fixture(scope="module")
def teacher():
    return Teacher.load("sentence-transformers/all-MiniLM-L6-v2", device="cpu")


def run_partial(tmp_path, teacher, name="shards", **settings):
    corpus = corpus_of(list(ANSWERS))
    with ChatServer(scripted) as server:
        backend = OpenAIBackend("scripted", base_url=server.url, api_key_env=None, concurrency=3)
        pool = PromptPool.load(pool_file(tmp_path))
        result = synthesize(
            corpus,
            backend,
            pool,
            SynthSettings(n_anchors=6, batch_size=4, **({"max_attempts": 1} | settings)),
            tmp_path / name,
            teacher,
        )
    return corpus, result


def test_partial_mode_filters_with_reasons_over_http(tmp_path, teacher):
    corpus, (pairs, rejected, stats) = run_partial(tmp_path, teacher)
    schemas.validate(pairs, schemas.Pairs, "pairs")
    schemas.validate(rejected, schemas.Rejected, "rejected")
    assert sorted([*pairs["id"], *rejected["id"]]) == sorted(corpus["id"])  # each exactly once
    reasons = dict(zip(rejected["anchor"], rejected["reason"], strict=True))
    assert reasons["She poured the milk into a glass."] == "negative_copies_anchor"
    assert reasons["He sold his old car last week."] == "negative_copies_anchor"
    assert reasons["The committee approved the new budget."] == "not_text"
    stock = [
        "A man is playing a guitar on the street.",
        "The train to Boston was delayed by two hours.",
    ]
    assert [reasons[a] for a in stock] == ["teacher_disagrees"] * 2  # "Sorry, ..." is no paraphrase
    kept = pairs.row(
        by_predicate=pl.col("anchor") == "The children played in the garden.", named=True
    )
    assert kept["positive"] == "Kids were playing outside in the yard."  # from JSON
    assert kept["hard_negative"] == "The children slept in the house."  # from a tagged line
    assert kept["teacher_positive"] > kept["teacher_negative"]
    assert stats["rejected_negative_copies_anchor"] == 2 and stats["acceptance_rate_partial"] > 0
    assert not (tmp_path / "shards").with_name("shards.stale").exists()

    # without the teacher the stock answer is accepted once, then it is a duplicate
    _, (pairs, rejected, _) = run_partial(tmp_path, None, name="no-teacher")
    reasons = dict(zip(rejected["anchor"], rejected["reason"], strict=True))
    assert sorted(reasons[a] for a in stock if a in reasons) == ["duplicate"]
    assert pairs["teacher_positive"].is_null().all()


def test_ai_feedback_scores_accepted_rows(tmp_path, teacher):
    _, (pairs, rejected, _) = run_partial(tmp_path, teacher, feedback=True)
    assert pairs.height > 0 and pairs["score"].to_list() == [4.5] * pairs.height
    assert "score" not in rejected.columns  # only accepted rows are rated


def test_an_unknown_backend_is_named():
    from embedlab.synth.backends import make_backend

    with pytest.raises(ValueError, match="unknown synthesize backend 'nope'"):
        make_backend("nope", "x")


def test_teacher_margin_rejects_pairs_the_teacher_ranks_wrongly(tmp_path, teacher):
    _, (pairs, rejected, stats) = run_partial(tmp_path, teacher, teacher_margin=0.9)
    assert pairs.height == 0
    disagree = rejected.filter(pl.col("reason") == "teacher_disagrees")
    assert disagree.height == stats["rejected_teacher_disagrees"] >= 2
    assert disagree["teacher_positive"].is_not_null().all()  # rejected with their scores


def test_query_and_scratch_modes(tmp_path, teacher, monkeypatch):
    texts = ["The children played in the garden.", "He sold his old car last week."]
    with ChatServer(scripted) as server:
        backend = OpenAIBackend("scripted", base_url=server.url, api_key_env=None)
        settings = SynthSettings(n_anchors=2, batch_size=2, max_attempts=1)
        pool = PromptPool.load(pool_file(tmp_path, "query"))
        pairs, rejected, _ = synthesize(
            corpus_of(texts), backend, pool, settings, tmp_path / "q", teacher
        )
        assert pairs.height + rejected.height == 6  # three query types per passage
        assert set(pairs["positive"]) <= set(texts) and pairs["hard_negative"].is_null().all()
        assert "Where did the children play?" in pairs["anchor"].to_list()
        assert "positive_copies_anchor" in rejected["reason"].to_list()  # the claim copies

        pool = PromptPool.load(pool_file(tmp_path, "scratch"))
        monkeypatch.setitem(  # not left behind for later tests
            ANSWERS,
            "The museum opens at nine.",
            ("At nine the museum opens its doors.", "It is shut."),
        )
        pairs, rejected, _ = synthesize(None, backend, pool, settings, tmp_path / "s", teacher)
    assert pairs.height == 1 and pairs["anchor"][0] == "The museum opens at nine."
    assert rejected["reason"].to_list() == ["duplicate"]  # the second written sentence repeats


def test_http_backend_retries_honours_rate_limits_and_gives_up_with_a_clear_error():
    conversations = [[{"role": "user", "content": "NEG: The children played in the garden."}]] * 6
    with ChatServer(scripted, stall_s=1.5) as server:
        server.faults.extend(["500", "429", "stall", "500"])
        backend = OpenAIBackend(
            "scripted",
            base_url=server.url,
            api_key_env=None,
            concurrency=2,
            timeout_s=0.5,
            backoff_s=0.05,
        )
        answers = backend.chat(conversations, 16)
        assert all("The children slept" in a.text for a in answers)
        assert backend.retries == 4 and len(server.requests) == 10

        server.faults.extend(["garbage", "400"])
        bad = OpenAIBackend("scripted", base_url=server.url, api_key_env=None, concurrency=1)
        got = bad.chat(conversations[:2], 16)
        assert got[0].text is None and got[0].error.startswith("parse")
        assert got[1].text is None and got[1].error == "backend_error: HTTP 400"

        server.faults.extend(["500"] * 3)
        down = OpenAIBackend(
            "scripted", base_url=server.url, api_key_env=None, max_attempts=3, backoff_s=0.01
        )
        with pytest.raises(BackendError, match=r"127\.0\.0\.1.*3 attempts \(last: HTTP 500\)"):
            down.chat(conversations[:1], 16)


def test_cli_over_http_keeps_the_api_key_out_of_logs_params_and_artifacts(tmp_path):
    corpus = corpus_of(list(ANSWERS))
    schemas.write(corpus, tmp_path / "corpus.parquet", schemas.Corpus)
    secret = "sk-test-" + "7" * 24
    with ChatServer(scripted) as server:
        env = {**os.environ, "MY_LLM_KEY": secret}
        cmd = [
            sys.executable, "-m", "embedlab.cli", "synthesize",
            "--corpus", str(tmp_path / "corpus.parquet"), "--prompt", pool_file(tmp_path),
            "--backend", "openai", "--openai-base-url", server.url,
            "--openai-api-key-env", "MY_LLM_KEY",
            "--model", "scripted", "--n-anchors", "6", "--batch-size", "3",
            "--pairs-out", str(tmp_path / "pairs.parquet"),
            "--rejected-out", str(tmp_path / "rejected.parquet"),
        ]  # fmt: skip
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-3000:]
    assert {r["auth"] for r in server.requests} == {f"Bearer {secret}"}  # it was really used
    assert secret not in done.stdout + done.stderr
    mlflow.set_tracking_uri(os.environ["EMBEDLAB_TRACKING_URI"])
    run = mlflow.search_runs(experiment_names=["test"], output_format="list")[0]
    assert secret not in json.dumps(run.data.params) + json.dumps(run.data.tags)
    assert run.data.metrics["rows"] == 6
    artifacts = tmp_path / "artifacts"
    mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=str(artifacts))
    files = [p for p in artifacts.rglob("*") if p.is_file()]
    assert {p.name for p in files} == {"rejected.parquet", "samples.md"}
    assert all(secret.encode() not in p.read_bytes() for p in files)
    assert "## 10 accepted" in (tmp_path / "samples.md").read_text()
    assert not (tmp_path / "shards").exists()  # cleared once the tables are written


def test_import_reads_syncse_and_nli_layouts(tmp_path):
    path = tmp_path / "syncse.csv"
    pl.DataFrame(
        {
            "sent0": ["A dog runs.", "A cat sleeps.", "A bird sings.", "A dog runs."],
            "sent1": [
                "A canine is running.",
                "A cat sleeps.",
                "A bird is singing.",
                "A canine is running.",
            ],
            "hard_neg": ["A dog sits.", "A cat plays.", None, "A dog sits."],
        }
    ).write_csv(path)
    pairs, rejected, stats = import_pairs(path, filters=Filters())
    schemas.validate(pairs, schemas.Pairs, "pairs")
    schemas.validate(rejected, schemas.Rejected, "rejected")
    assert pairs["anchor"].to_list() == ["A dog runs."] and pairs["mode"][0] == "imported"
    assert sorted(rejected["reason"]) == ["duplicate", "parse", "positive_copies_anchor"]
    assert stats["rows"] == 4
    nli = tmp_path / "nli.jsonl"
    nli.write_text(
        json.dumps({"premise": "A b c d.", "entailment": "E f g.", "contradiction": "H i."})
    )
    assert import_pairs(nli)[0]["prompt_id"].to_list() == ["import:nli"]
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("text,label\na,b\n")
    with pytest.raises(
        schemas.DataError, match=r"wrong\.csv: columns \['text', 'label'\] match no"
    ):
        import_pairs(wrong)


@pytest.mark.slow
def test_kill_9_midway_then_rerun_equals_an_uninterrupted_run(tmp_path, mirror):
    """The real packaged LLM asking rejected rows again (sampled), killed by SIGKILL in the
    middle of its second round; the rerun skips the finished chunks of both rounds and ends
    with the uninterrupted run's tables, every failed attempt included."""
    texts = [t.strip() for t in (mirror / "corpus/wordnet-examples.txt").open()][:4000:200]
    schemas.write(corpus_of(texts[:20]), tmp_path / "corpus.parquet", schemas.Corpus)

    def command(name: str) -> list[str]:
        return [
            sys.executable, "-m", "embedlab.cli", "synthesize",
            "--corpus", str(tmp_path / "corpus.parquet"), "--mirror", str(mirror),
            "--prompt", str(REPO / "config/prompts/partial.yaml"), "--device", "cpu",
            "--n-anchors", "20", "--batch-size", "4", "--max-new-tokens", "24",
            "--max-attempts", "3", "--teacher-margin", "none",
            "--shards", str(tmp_path / name / "shards"),
            "--pairs-out", str(tmp_path / name / "pairs.parquet"),
            "--rejected-out", str(tmp_path / name / "rejected.parquet"),
        ]  # fmt: skip

    def attempts(manifest: Path) -> list[int]:
        lines = manifest.read_text().splitlines()[1:] if manifest.exists() else []
        return [json.loads(line)["attempt"] for line in lines if line.endswith("}")]

    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    victim = subprocess.Popen(command("killed"), env=env, stderr=subprocess.DEVNULL)
    manifest = tmp_path / "killed/shards/manifest.jsonl"
    deadline = time.time() + TIMEOUT_S
    while time.time() < deadline and victim.poll() is None:
        if 2 in attempts(manifest):  # the first chunk of the second round is recorded
            break
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    at_kill = attempts(manifest)
    assert at_kill.count(1) == 5 and at_kill.count(2) >= 1, "not killed in the second round"

    for name in ("killed", "clean"):
        finished = subprocess.run(command(name), env=env, capture_output=True, text=True)
        assert finished.returncode == 0, finished.stderr[-3000:]
    killed = [pl.read_parquet(tmp_path / f"killed/{t}.parquet") for t in ("pairs", "rejected")]
    clean = [pl.read_parquet(tmp_path / f"clean/{t}.parquet") for t in ("pairs", "rejected")]
    assert set([*killed[0]["id"], *killed[1]["id"]]) == set(corpus_of(texts[:20])["id"])
    assert killed[1]["attempt"].max() == 3  # rows were asked a third time
    assert killed[0].equals(clean[0]) and killed[1].equals(clean[1])  # seeded: same outputs
    mlflow.set_tracking_uri(os.environ["EMBEDLAB_TRACKING_URI"])
    runs = mlflow.search_runs(experiment_names=["test"], output_format="list")
    resumed = [r.data.metrics.get("chunks_resumed") for r in runs]
    assert len(at_kill) in resumed  # the rerun generated only the chunks the kill left undone


@pytest.mark.slow
def test_prefix_cache_and_row_dropping_decode_as_generate_does(mirror):
    """The backend's fast path (shared few-shot KV cache, finished rows leave the batch) gives
    the greedy answers of plain ``model.generate`` on the same prompts."""
    from embedlab.synth.backends import TransformersBackend

    backend = TransformersBackend("HuggingFaceTB/SmolLM2-135M-Instruct", device="cpu")
    pool = PromptPool.load(REPO / "config/prompts/partial.yaml")
    texts = [t.strip() for t in (mirror / "corpus/wordnet-examples.txt").open()][:3000:500]
    turns = [
        pool.messages(role, text, unit=str(i), seed=0)[0]
        for role in ("positive", "hard_negative")
        for i, text in enumerate(texts)
    ]
    fast = backend.chat(turns, 24)
    assert len(backend._cache) >= 2  # prefixes were cached, so the fast path ran
    plain = backend.generate([backend.prompt(t) for t in turns], 24)
    assert [a.text for a in fast] == [a.text for a in plain]
    assert [a.tokens for a in fast] == [a.tokens for a in plain]


# what the scripted server writes for a hard negative when asked with sampling: a copy of the
# anchor greedily (ANSWERS), a usable negative when asked again
SAMPLED_NEGATIVES = {
    "She poured the milk into a glass.": "She spilled the juice onto the floor.",
    "He sold his old car last week.": "He bought a new bike yesterday.",
}


def scripted_by_request(body: dict) -> str:
    """``scripted``, except that a sampled hard negative is usable (``SAMPLED_NEGATIVES``)."""
    kind, _, text = body["messages"][-1]["content"].partition(": ")
    if kind == "NEG" and body["temperature"] > 0 and text in SAMPLED_NEGATIVES:
        return f"Hard negative: {SAMPLED_NEGATIVES[text]}"
    return scripted(body["messages"])


def test_a_rejected_row_is_asked_again_sampled_and_only_for_the_role_its_reason_blames(tmp_path):
    """Attempt 1 greedy; attempt 2 asks, with sampling and the row's own seed, only what the
    reason blames (a copied negative: the negative; an unusable positive: the positive; a
    duplicate: both). A run with max_attempts 1 is exactly the first round of a longer one."""
    texts, pool = list(ANSWERS), PromptPool.load(pool_file(tmp_path))
    ids = {t: i for t, i in zip(texts, corpus_of(texts)["id"], strict=True)}
    runs, requests = {}, {}
    for attempts in (1, 2, 2):
        with ChatServer(scripted_by_request, whole_request=True) as server:
            backend = OpenAIBackend("scripted", base_url=server.url, api_key_env=None)
            settings = SynthSettings(
                n_anchors=6, batch_size=4, teacher_margin=None, max_attempts=attempts
            )
            folder = tmp_path / f"{attempts}-{len(requests)}"
            result = synthesize(corpus_of(texts), backend, pool, settings, folder)
        runs.setdefault(attempts, []).append(result)
        requests.setdefault(attempts, []).append([r["body"] for r in server.requests])
    pairs, rejected, stats = runs[2][0]
    schemas.validate(rejected, schemas.Rejected, "rejected")
    milk, car = "She poured the milk into a glass.", "He sold his old car last week."
    committee = "The committee approved the new budget."
    train = "The train to Boston was delayed by two hours."
    assert set(pairs["anchor"]) == {texts[0], milk, car, texts[4]}
    failed = [
        (milk, 1, "negative_copies_anchor"),
        (car, 1, "negative_copies_anchor"),
        (committee, 1, "not_text"),
        (committee, 2, "not_text"),
        (train, 1, "duplicate"),
        (train, 2, "duplicate"),
    ]
    assert sorted(rejected.select("id", "attempt", "reason").iter_rows()) == sorted(
        (ids[t], n, reason) for t, n, reason in failed
    )
    row = pairs.row(by_predicate=pl.col("anchor") == milk, named=True)
    assert row["positive"] == ANSWERS[milk][0]  # kept from attempt 1
    assert row["hard_negative"] == SAMPLED_NEGATIVES[milk]  # asked again
    assert stats["attempt2_asked"] == 4 and stats["attempt2_accepted"] == 2
    assert stats["rows"] == 6 and stats["accepted"] == 4 and stats["failed_attempts"] == 6

    sampled = [b for b in requests[2][0] if b["temperature"] > 0]
    asked = sorted((b["messages"][-1]["content"].split(": ")[0], b["messages"][-1]["content"]
                    .split(": ", 1)[1]) for b in sampled)  # fmt: skip
    assert asked == sorted(
        [("NEG", milk), ("NEG", car), ("POS", committee), ("POS", train), ("NEG", train)]
    )
    assert {b["top_p"] for b in sampled} == {0.95} and len({b["seed"] for b in sampled}) == 5
    assert all(b["temperature"] == 0 for b in requests[2][0] if b not in sampled)
    # the same seeds in a second run: the random state is the seed's, the row's and the attempt's
    seeds = [sorted(b["seed"] for b in r if b["temperature"] > 0) for r in requests[2]]
    assert seeds[0] == seeds[1]
    assert runs[2][0][0].equals(runs[2][1][0]) and runs[2][0][1].equals(runs[2][1][1])

    once_pairs, once_rejected, once_stats = runs[1][0]  # the longer run's first round, exactly
    assert once_rejected.equals(rejected.filter(pl.col("attempt") == 1))
    later = rejected.filter(pl.col("attempt") == 1)["id"].implode()
    assert once_pairs.equals(pairs.filter(~pl.col("id").is_in(later)))

    # so a cache entry of 2 rounds serves a run of 1 (the same tables and counts); a run of 3
    # generates, since a third round would ask again for two rows
    def cached(attempts: int):
        settings = SynthSettings(n_anchors=6, batch_size=4, teacher_margin=None)
        with ChatServer(scripted_by_request, whole_request=True) as server:
            backend = OpenAIBackend("scripted", base_url=server.url, api_key_env=None)
            return synthesize(
                corpus_of(texts), backend, pool, replace(settings, max_attempts=attempts),
                tmp_path / f"c{attempts}", cache=tmp_path / "cache",
            )  # fmt: skip

    assert cached(2)[2]["cache_hit"] == 0
    from_cache = cached(1)
    assert from_cache[2]["cache_hit"] == 1
    assert from_cache[0].equals(once_pairs) and from_cache[1].equals(once_rejected)
    for key in ("rows", "accepted", "failed_attempts", "attempt1_tokens", "rejected"):
        assert from_cache[2][key] == once_stats[key], key
    assert "attempt2_asked" not in from_cache[2]
    assert cached(3)[2]["cache_hit"] == 0


def test_sampled_decoding_is_the_seeds_and_a_tiny_nucleus_is_greedy(mirror):
    """The transformers backend's sampling: the same seed gives the same answer, other seeds
    other answers, and a nucleus of one token (top_p near 0) is greedy decoding."""
    from embedlab.synth.backends import TransformersBackend

    backend = TransformersBackend("HuggingFaceTB/SmolLM2-135M-Instruct", device="cpu")
    pool = PromptPool.load(REPO / "config/prompts/partial.yaml")
    texts = [t.strip() for t in (mirror / "corpus/wordnet-examples.txt").open()][:2000:500]
    turns = [pool.messages("positive", t, unit=str(i), seed=0)[0] for i, t in enumerate(texts)]
    greedy = [c.text for c in backend.chat(turns, 20)]

    def sampled(seeds, top_p=0.95):
        return [c.text for c in backend.chat(turns, 20, [Sampling(1.0, top_p, s) for s in seeds])]

    first = sampled([1, 2, 3, 4])
    assert sampled([1, 2, 3, 4]) == first
    assert sampled([5, 6, 7, 8]) != first and first != greedy
    assert sampled([5, 6, 7, 8], top_p=1e-6) == greedy


class Killed(Exception):
    """Stands for ``kill -9`` right after a shard is recorded."""


def kill_after_first_shard(chunk: int, figures: dict) -> None:
    raise Killed


def synthesize_over_http(answer, texts, folder, pool_path, settings, teacher=None, **kw):
    with ChatServer(answer) as server:
        backend = OpenAIBackend("scripted", base_url=server.url, api_key_env=None, concurrency=2)
        pool = PromptPool.load(pool_path)
        return synthesize(corpus_of(texts), backend, pool, settings, folder, teacher, **kw)


def test_a_resumed_run_keeps_the_duplicate_filters_memory(tmp_path):
    """A generated text equal to an earlier anchor is no duplicate in an uninterrupted run, so
    it is none after a resume either (the memory is what the recorded chunks added)."""
    first, second = "A boy kicks a ball.", "The children played in the garden."

    def answer(messages: list[dict]) -> str:
        kind, _, text = messages[-1]["content"].partition(": ")
        if text == first:
            return "A child kicks a football." if kind == "POS" else "A boy holds a ball."
        return first if kind == "POS" else "The children slept in the house."

    settings = SynthSettings(n_anchors=2, batch_size=1, teacher_margin=None)
    pool = pool_file(tmp_path)
    clean = synthesize_over_http(answer, [first, second], tmp_path / "clean", pool, settings)
    assert clean[0].height == 2  # the first anchor's text is a fine positive for the second
    with pytest.raises(Killed):
        synthesize_over_http(
            answer, [first, second], tmp_path / "x", pool, settings, on_chunk=kill_after_first_shard
        )
    resumed = synthesize_over_http(answer, [first, second], tmp_path / "x", pool, settings)
    assert resumed[2]["chunks_resumed"] == 1
    assert resumed[0].equals(clean[0]) and resumed[1].equals(clean[1])


CHANGES = ["teacher", "teacher_margin", "copy_threshold", "max_chars", "feedback", "prompts"]


@pytest.mark.parametrize("change", CHANGES)
def test_shards_of_other_filter_settings_are_set_aside_not_resumed(tmp_path, change, minilm):
    """Killed after one shard, rerun with one setting changed: the result is row for row the
    uninterrupted run's under the new setting (the teacher changes in place: same path, other
    weights)."""
    import torch

    folder = tmp_path / "teacher"
    minilm.save(str(folder))
    pool = tmp_path / "partial.yaml"
    pool.write_text(open(pool_file(tmp_path)).read())
    texts, old = list(ANSWERS), {"n_anchors": 6, "batch_size": 2, "teacher_margin": 0.0}
    with pytest.raises(Killed):
        synthesize_over_http(
            scripted, texts, tmp_path / "x", pool, SynthSettings(**old),
            Teacher.load(str(folder), device="cpu"), on_chunk=kill_after_first_shard,
        )  # fmt: skip
    assert len((tmp_path / "x/manifest.jsonl").read_text().splitlines()) == 2

    new = dict(old)
    if change == "teacher":
        perturbed = Teacher.load(str(folder), device="cpu").model
        with torch.no_grad():
            for param in perturbed.parameters():
                param.add_(0.05 * torch.randn_like(param))
        perturbed.save(str(folder))
    elif change == "prompts":
        pool.write_text(pool.read_text().replace("system: s", "system: another system prompt"))
    elif change in ("copy_threshold", "max_chars"):
        new["filters"] = Filters(**{change: {"copy_threshold": 0.5, "max_chars": 30}[change]})
    else:
        new[change] = {"teacher_margin": 0.2, "feedback": True}[change]
    teacher = Teacher.load(str(folder), device="cpu")
    runs = [
        synthesize_over_http(scripted, texts, tmp_path / name, pool, SynthSettings(**new), teacher)
        for name in ("x", "clean")
    ]
    assert runs[0][2]["chunks_resumed"] == 0 and (tmp_path / "x.stale/manifest.jsonl").exists()
    assert runs[0][0].equals(runs[1][0]) and runs[0][1].equals(runs[1][1])


def test_http_faults_cut_bodies_dates_drips_and_refused_keys():
    """Truncated bodies are retried; Retry-After as an HTTP date is honoured; timeout_s bounds a
    whole request (a dripping server is cut off and retried); 401 stops at once."""
    conversation = [{"role": "user", "content": "NEG: The children played in the garden."}]
    with ChatServer(scripted, stall_s=0.2, retry_s=2.0) as server:
        backend = OpenAIBackend(
            "scripted", base_url=server.url, api_key_env=None, timeout_s=1.0, backoff_s=0.01
        )
        server.faults.extend(["truncate", "truncate"])
        [answer] = backend.chat([conversation], 16)
        assert "The children slept" in answer.text and backend.retries == 2

        server.faults.append("429date")
        backend.chat([conversation], 16)
        first, second = server.requests[-2:]
        assert second["at"] - first["at"] >= 0.9  # asked for 2 s as a date of 1 s resolution

        server.faults.append("drip")  # 200 bytes, one every 0.2 s: 40 s without a deadline
        [answer] = backend.chat([conversation], 16)
        assert "The children slept" in answer.text and backend.retries == 4
        assert server.drips_completed == 0  # the client gave up on it, it did not wait it out
        assert [r["fault"] for r in server.requests[-2:]] == ["drip", None]

        server.faults.append("401")
        with pytest.raises(BackendError, match=r"HTTP 401, the server refuses the credentials"):
            backend.chat([conversation], 16)
        assert server.requests[-1]["fault"] == "401"  # not retried


def test_a_batch_whose_every_request_fails_stops_the_stage(tmp_path):
    """A server that refuses everything used to give 0 pairs and exit 0, recorded as done."""
    with ChatServer(scripted) as server:
        server.faults.extend(["400"] * 100)
        backend = OpenAIBackend("scripted", base_url=server.url, api_key_env=None)
        pool = PromptPool.load(pool_file(tmp_path))
        settings = SynthSettings(n_anchors=6, batch_size=3, teacher_margin=None)
        with pytest.raises(BackendError, match=r"all 6 requests of a batch failed.*HTTP 400"):
            synthesize(corpus_of(list(ANSWERS)), backend, pool, settings, tmp_path / "s")
    assert len((tmp_path / "s/manifest.jsonl").read_text().splitlines()) == 1  # nothing kept


def test_http_backend_goes_through_the_proxy_the_environment_names(monkeypatch):
    """HTTP_PROXY / NO_PROXY as urllib honours them (the test server plays the proxy)."""
    conversation = [{"role": "user", "content": "NEG: The children played in the garden."}]
    for name in ("NO_PROXY", "no_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    with ChatServer(scripted) as server:
        monkeypatch.setenv("HTTP_PROXY", server.url.removesuffix("/v1"))
        remote = OpenAIBackend("m", base_url="http://llm.invalid/v1", api_key_env=None)
        [answer] = remote.chat([conversation], 16)
        assert "The children slept" in answer.text
        assert server.requests[-1]["path"] == "http://llm.invalid/v1/chat/completions"

        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        local = OpenAIBackend("m", base_url=server.url, api_key_env=None, max_attempts=1)
        [answer] = local.chat([conversation], 16)  # bypasses the proxy
        assert "The children slept" in answer.text
        assert server.requests[-1]["path"] == "/v1/chat/completions"


def test_llama_cpp_backend_keeps_the_input_order_and_runs_shared_prefixes_together(
    monkeypatch, mirror
):
    """llama-cpp-python's Llama replaced by a recorder (it is built from source, not installed
    by make env): what embedlab asks of it, in which order, and what it returns."""
    import types

    from embedlab.errors import SettingError
    from embedlab.synth.backends import LlamaCppBackend, make_backend

    calls, loaded, decodings = [], {}, []

    class Llama:
        def __init__(self, model_path, **options):
            loaded.update(options, model_path=model_path)

        def create_chat_completion(self, messages, max_tokens, **decoding):
            calls.append(messages)
            decodings.append(decoding)
            if messages[-1]["content"] == "too long":
                raise ValueError("Requested tokens exceed context window")
            text = f"answer to {messages[-1]['content']}"
            return {"choices": [{"message": {"content": text}}], "usage": {"completion_tokens": 3}}

    monkeypatch.setitem(sys.modules, "llama_cpp", types.SimpleNamespace(Llama=Llama))
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    backend = make_backend("llama.cpp", "HuggingFaceTB/SmolLM2-135M-Instruct", [str(mirror)])
    assert isinstance(backend, LlamaCppBackend) and loaded["model_path"].endswith(".gguf")
    assert loaded["n_threads"] == 2 and backend.identity.startswith("HuggingFaceTB/")
    shots = {"a": [{"role": "user", "content": "shot a"}], "b": [{"role": "user", "content": "b"}]}
    asks = [("a", "x"), ("b", "y"), ("a", "too long"), ("b", "z")]
    conversations = [[*shots[s], {"role": "user", "content": q}] for s, q in asks]
    sampled = Sampling(0.7, 0.9, 11)
    done = backend.chat(conversations, 8, [None, sampled, None, None])
    assert [c.text for c in done] == ["answer to x", "answer to y", None, "answer to z"]
    by_question = {c[-1]["content"]: d for c, d in zip(calls, decodings, strict=True)}
    assert by_question["y"] == {"temperature": 0.7, "top_p": 0.9, "seed": 11}
    assert by_question["x"] == by_question["z"] == {"temperature": 0.0}  # greedy
    assert done[2].error.startswith("backend_error: Requested tokens")
    prefixes = [c[0]["content"] for c in calls]
    assert prefixes == sorted(prefixes)  # requests that share a few-shot prefix run in a row
    with pytest.raises(SettingError, match="reads a GGUF file"):
        make_backend("llama.cpp", "sentence-transformers/all-MiniLM-L6-v2")


def test_an_answer_over_the_cap_is_rejected_unread():
    """A faulty server's 300 MB answer took the stage to 2.5 GB; an answer is read up to
    MAX_ANSWER_BYTES and a larger one becomes a rejected row with its reason."""
    from embedlab.synth.openai_http import MAX_ANSWER_BYTES, OpenAIBackend

    from .chat_server import ChatServer

    huge = "x" * (4 * MAX_ANSWER_BYTES)

    def answer(messages: list[dict]) -> str:
        return huge if "big" in messages[-1]["content"] else "fine"

    with ChatServer(answer) as server:
        backend = OpenAIBackend("m", base_url=server.url, api_key_env=None, max_attempts=1)
        big, small = backend.chat([[{"role": "user", "content": c}] for c in ("big", "ok")], 8)
    assert big.text is None and big.error == f"answer_too_large: over {MAX_ANSWER_BYTES} bytes"
    assert small.text == "fine"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("Sentence: {anchor.__class__.__mro__}", "anchor.__class__.__mro__"),
        ('Answer as {"positive": "..."}. Sentence: {anchor}', '"positive": "..."'),
        ("Sentence: {anchor!r}", "anchor!r"),
        ("Sentence: {anchor} in {language}", "language"),
        ("Sentence: {anchor:>40}", "anchor:>40"),
        ("Sentence: {anchor", None),
    ],
)
def test_a_template_with_more_than_its_fields_is_refused_when_the_pool_loads(tmp_path, text, named):
    import yaml

    pool = yaml.safe_load(Path(pool_file(tmp_path)).read_text())
    pool["roles"]["hard_negative"][0]["text"] = text
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(pool))
    with pytest.raises(ValueError) as refused:
        PromptPool.load(bad)
    message = str(refused.value)
    variant = pool["roles"]["hard_negative"][0].get("id", "?")
    assert f"bad.yaml: roles.hard_negative[0] (variant {variant!r})" in message
    assert (named is None and "cannot be filled" in message) or f"field {named!r}" in message


def test_doubled_braces_are_literal_in_the_prompt(tmp_path):
    import yaml

    pool = yaml.safe_load(Path(pool_file(tmp_path)).read_text())
    pool["roles"]["positive"] = [{"id": "json", "text": 'Answer {{"positive": ...}}: {anchor}'}]
    path = tmp_path / "json.yaml"
    path.write_text(yaml.safe_dump(pool))
    turns, _ = PromptPool.load(path).messages("positive", "A cat.", "u1", 0)
    assert turns[-1]["content"] == 'Answer {"positive": ...}: A cat.'


def test_the_vllm_backend_asks_as_each_request_says_and_reads_answers_in_order(monkeypatch, mirror):
    """vLLM replaced by a recorder (it needs a GPU): the model path, seed and sampling
    parameters embedlab passes, and the completions it reads back."""
    import types

    from embedlab.synth.backends import VLLMBackend, make_backend

    seen = {}

    class SamplingParams:
        def __init__(self, **params):
            self.params = params

    class LLM:
        def __init__(self, model, seed):
            seen.update(model=model, seed=seed)

        def chat(self, conversations, params, use_tqdm):
            seen["conversations"] = conversations
            seen["params"] = [p.params for p in params]
            return [
                types.SimpleNamespace(
                    outputs=[types.SimpleNamespace(text=f"to {c[-1]['content']}", token_ids=[1, 2])]
                )
                for c in conversations
            ]

    vllm = types.SimpleNamespace(LLM=LLM, SamplingParams=SamplingParams)
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    backend = make_backend("vllm", "HuggingFaceTB/SmolLM2-135M-Instruct", [str(mirror)], seed=3)
    assert isinstance(backend, VLLMBackend) and seen["seed"] == 3
    conversations = [[{"role": "user", "content": q}] for q in ("a", "b")]
    done = backend.chat(conversations, 16, [None, Sampling(0.8, 0.95, 5)])
    assert [(c.text, c.tokens) for c in done] == [("to a", 2), ("to b", 2)]
    assert seen["params"] == [
        {"temperature": 0.0, "max_tokens": 16, "seed": 3},  # greedy
        {"temperature": 0.8, "top_p": 0.95, "max_tokens": 16, "seed": 5},  # the row's own seed
    ]
    assert seen["conversations"] == conversations


@pytest.mark.parametrize(
    "backend, package", [("vllm", "pip install vllm"), ("llama.cpp", "pip install llama-cpp")]
)
def test_a_missing_optional_backend_is_one_line_naming_what_to_install(
    backend, package, monkeypatch, capsys, tmp_path
):
    from embedlab.cli import main

    module = {"vllm": "vllm", "llama.cpp": "llama_cpp"}[backend]
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    out = tmp_path / "synth"
    args = ["synthesize", "--mode", "scratch", "--backend", backend, "--n-anchors", "2"]
    args += ["--pairs-out", str(out / "p.parquet"), "--rejected-out", str(out / "r.parquet")]
    args += ["--prompt", str(REPO / "config/prompts/scratch.yaml"), "--teacher-margin", "none"]
    assert main(args) == 1
    err = capsys.readouterr().err
    (line,) = [x for x in err.splitlines() if x.startswith("embedlab synthesize: error:")]
    assert package in line and "Traceback" not in err, err
