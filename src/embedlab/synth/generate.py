"""LLM-written training pairs, kill-safe and exact: the synthesize stage's generating modes.

Of the stage's five modes, three generate (SynCSE, CLAIF and synthetic-query retrieval
fine-tuning); ``import`` reads a published set and ``unlabeled`` uses the corpus itself:

- ``partial``: for each unlabeled sentence, a positive (same meaning, other words) and a hard
  negative (close wording, changed meaning);
- ``scratch``: a sentence written from a sampled genre and topic, then its positive and hard
  negative as in partial;
- ``query``: for each passage, one query per type (question, claim, keywords); the passage is
  the positive, there is no hard negative;
- ``import`` (``synth.importing``): a published set (``sent0,sent1,hard_neg`` CSV as SynCSE
  releases it, NLI triplets, SNLI, COCO captions);
- ``unlabeled`` (``corpus.build.unlabeled_pairs``): each sentence its own positive (SimCSE).

Work is cut into chunks of ``batch_size`` units (anchors sorted by length, so a batch pads
little); every chunk is generated, parsed, filtered (cheap filters, then teacher agreement,
then optional AI feedback) and written as a shard (``synth.shards``). That is attempt 1, decoded
greedily. Then, up to ``max_attempts``, each round asks again for the rows the previous round
rejected: another instruction variant and exemplars from the pool, sampled decoding
(``retry_temperature``, ``retry_top_p``) from a generator seeded by (seed, row, role, attempt),
and only the role the reason names (a positive that copies the anchor is asked again, its hard
negative kept). A row is accepted at its first passing attempt. Since a round only reads the
rounds before it, a run with ``max_attempts = k`` gives exactly the first k rounds of a longer
one. Every row ends in pairs or in rejected, and every failed attempt is in rejected with its
reason and attempt number. A rerun after a kill skips the recorded chunks, so nothing accepted
is generated twice, and since each round's chunks are fixed before its first one runs, the
final tables equal an uninterrupted run's.

Example::

    backend = make_backend("transformers", "HuggingFaceTB/SmolLM2-135M-Instruct")
    pool = PromptPool.load("config/prompts/partial.yaml")
    pairs, rejected, stats = synthesize(corpus, backend, pool, SynthSettings(n_anchors=100),
                                        shards="results/x/synth/shards")
"""

import hashlib
import json
import logging
import re
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import polars as pl
from tqdm.auto import tqdm

from embedlab import markdown
from embedlab.atomic import atomic_write, write_text
from embedlab.contracts import SYNTH_ACCEPTED, SYNTH_ROWS, attempt_metric, rejected_metric
from embedlab.ids import stable_id
from embedlab.provenance import stage_code_version
from embedlab.schemas import Pairs, polars_schema
from embedlab.settings.synthesize import SynthesizeSettings
from embedlab.synth.backends import Backend, BackendError, Completion, Sampling
from embedlab.synth.filters import (
    Filters,
    copy_similarity,
    normalised,
    parse_answer,
    reject_reason,
    text_reason,
)
from embedlab.synth.prompts import PromptPool, stream_seed
from embedlab.synth.shards import ShardStore

log = logging.getLogger(__name__)

FEEDBACK_PROMPT = (
    "On a scale from 0 (unrelated) to 5 (same meaning), how similar in meaning are these two "
    "sentences? Answer with the number only.\nSentence 1: {a}\nSentence 2: {b}"
)

# one row per unit, accepted or not; split into pairs / rejected at the end
ROW_SCHEMA = {
    **polars_schema(Pairs),
    "teacher_positive": pl.Float64,
    "teacher_negative": pl.Float64,
    "raw": pl.String,
    "reason": pl.String,
    "attempt": pl.Int64,
}


@dataclass(frozen=True)
class SynthSettings:
    """What the synthesize stage does; all of it goes into the shards' fingerprint."""

    n_anchors: int = SynthesizeSettings.n_anchors  # anchors (partial, query) or sentences
    batch_size: int = SynthesizeSettings.batch_size
    max_new_tokens: int = SynthesizeSettings.max_new_tokens
    seed: int = SynthesizeSettings.seed
    filters: Filters = field(default_factory=Filters)
    teacher_margin: float | None = SynthesizeSettings.teacher_margin  # None: no teacher filter
    feedback: bool = SynthesizeSettings.feedback  # CLAIF-style 0-5 similarity, column `score`
    max_attempts: int = SynthesizeSettings.max_attempts  # asks per row (1: once, greedy)
    retry_temperature: float = SynthesizeSettings.retry_temperature
    retry_top_p: float = SynthesizeSettings.retry_top_p

    @classmethod
    def of(cls, s: SynthesizeSettings) -> "SynthSettings":
        """The generating part of the stage's settings (what enters the fingerprint)."""
        return cls(
            s.n_anchors,
            s.batch_size,
            s.max_new_tokens,
            s.seed,
            Filters.of(s),
            s.teacher_margin,
            s.feedback,
            s.max_attempts,
            s.retry_temperature,
            s.retry_top_p,
        )


@dataclass
class Unit:
    id: str
    text: str | None  # the anchor (partial), the passage (query), None (scratch)


@dataclass(frozen=True)
class Ask:
    """One row's request in an attempt: its unit, the roles asked, and (on a later attempt) the
    answers kept from the one before, by role: (raw answer, prompt id)."""

    row: str
    unit: Unit
    roles: tuple[str, ...]
    kept: dict[str, tuple[str | None, str]] = field(default_factory=dict)


# the role a rejection reason blames, where it names one; any other reason asks all roles
BLAMED = {
    "positive_copies_anchor": ("positive",),
    "negative_copies_anchor": ("hard_negative",),
    "positive_equals_negative": ("hard_negative",),
}


def asks_of(units: list[Unit], roles: Sequence[str], mode: str) -> list[Ask]:
    """The first attempt's asks: one row per unit (per unit and query type in ``query``)."""
    if mode == "query":
        return [Ask(stable_id(f"{u.id}:{r}", "query"), u, (r,)) for u in units for r in roles]
    return [Ask(u.id, u, tuple(roles)) for u in units]


def ask_again(
    row: dict, mode: str, roles: Sequence[str], unit_of: dict[str, str], filters: Filters
) -> Ask | None:
    """The ask that retries a rejected ``row`` (None for a scratch sentence: its topic is not
    asked again). Only the blamed roles are asked; the others keep their answer. ``unit_of``
    maps a query row to its unit."""
    raw = json.loads(row["raw"])
    if "sentence" in raw:
        return None
    if mode == "query":  # one role per row, the passage its positive
        [role] = raw
        return Ask(row["id"], Unit(unit_of[row["id"]], row["positive"]), (role,))
    blamed = BLAMED.get(row["reason"])
    if blamed is None and row["reason"] in TEXT_REASONS:  # the role(s) whose own text fails
        blamed = tuple(r for r in roles if text_reason(parse_answer(raw[r], r), filters))
    blamed = blamed or tuple(roles)
    prompts = dict(zip(roles, row["prompt_id"].split(";"), strict=True))
    kept = {r: (raw[r], prompts[r]) for r in roles if r not in blamed}
    return Ask(row["id"], Unit(row["id"], row["anchor"]), blamed, kept)


TEXT_REASONS = ("parse", "backend_error", "too_short", "too_long", "not_text")


def choose_units(corpus: pl.DataFrame | None, mode: str, settings: SynthSettings) -> list[Unit]:
    """The units of work, in the fixed order the chunks are cut from."""
    if mode == "scratch":
        return [
            Unit(stable_id(f"{settings.seed}:{i}", "scratch"), None)
            for i in range(settings.n_anchors)
        ]
    anchors = corpus.sample(n=min(settings.n_anchors, corpus.height), seed=settings.seed)
    anchors = anchors.sort(pl.col("text").str.len_chars(), "id")  # less padding per batch
    return [Unit(r["id"], r["text"]) for r in anchors.iter_rows(named=True)]


def fingerprint(
    units: Sequence[Unit],
    backend: Backend,
    pool: PromptPool,
    settings: SynthSettings,
    teacher: "Teacher | None" = None,
) -> str:
    """Hash of everything that decides what the rows hold: the units, the generator and the
    teacher (by content where they are local), the prompt pool, the settings and the synthesis
    code (the shards' and the cache's key). ``max_attempts`` is left out: the first k rounds of
    a run are a run of k attempts, so a cache entry with more rounds serves one with fewer."""
    h = hashlib.sha256()
    for part in (
        json.dumps(asdict(replace(settings, max_attempts=0)), sort_keys=True, default=str),
        backend.identity,
        repr(pool),
        teacher.identity if teacher else "no teacher",
        stage_code_version("synthesize"),
        *(u.id for u in units),
    ):
        h.update(part.encode())
        h.update(b"\x1f")
    return h.hexdigest()[:16]


class Teacher:
    """Cosine similarities under the teacher encoder (rows are L2-normalised by ``encode``).

    ``identity`` (``resolve.model_identity``) enters the shards' fingerprint: shards filtered
    by another teacher, or by a changed copy under the same name, are never resumed.
    """

    def __init__(self, model, identity: str, batch_size: int = 64):
        self.model = model
        self.identity = identity
        self.batch_size = batch_size

    @classmethod
    def load(cls, name: str, mirrors: Sequence[str] = (), device: str | None = None) -> "Teacher":
        from embedlab.encode import load_encoder
        from embedlab.resolve import model_identity

        return cls(load_encoder(name, mirrors, device), model_identity(name, mirrors))

    def cosines(self, a: Sequence[str], b: Sequence[str]) -> np.ndarray:
        from embedlab.encode import encode

        if not a:
            return np.zeros(0)
        emb = encode(self.model, [*a, *b], batch_size=self.batch_size)
        return (emb[: len(a)] * emb[len(a) :]).sum(axis=1).astype(np.float64)


def _number(raw: str | None) -> float | None:
    match = re.search(r"\d+(?:\.\d+)?", raw or "")
    return min(float(match[0]), 5.0) if match else None


class Seen:
    """The duplicate filter's memory: the normalised texts accepted so far, across chunks.

    The resume guarantee is kept here: each chunk's shard records the keys that chunk added
    (``added``), and a run starts from the recorded chunks' keys in chunk order, so after a
    kill the memory is exactly the one an uninterrupted run had at that point, and the final
    tables are the same.
    """

    def __init__(self, recorded: Iterable[Sequence[str]] = ()):
        self.keys: set[str] = set()
        for added in recorded:
            self.keys.update(added)
        self.added: list[str] = []  # what the current chunk added, in order (its shard's)

    def start_chunk(self) -> None:
        self.added = []

    def holds_any(self, keys: Iterable[str]) -> bool:
        return not self.keys.isdisjoint(keys)

    def add(self, keys: Sequence[str]) -> None:
        for key in keys:
            if key not in self.keys:
                self.keys.add(key)
                self.added.append(key)


class _Chunk:
    """Generates, parses and filters the rows of one chunk of one attempt: one row per ask,
    accepted (``reason`` None) or rejected with its reason."""

    def __init__(self, backend, pool, settings, teacher, seen: Seen, attempt: int = 1):
        self.backend, self.pool, self.settings = backend, pool, settings
        self.teacher, self.seen, self.attempt = teacher, seen, attempt
        self.tokens = 0

    def ask(
        self,
        conversations: list[list[dict[str, str]]],
        sampling: list[Sampling | None] | None = None,
    ) -> list[Completion]:
        if not conversations:
            return []
        answers = self.backend.chat(conversations, self.settings.max_new_tokens, sampling)
        failed = [a.error for a in answers if a.error]
        if len(failed) == len(answers):  # a broken backend, not a few bad rows: stop
            raise BackendError(
                f"{self.backend.name}: all {len(answers)} requests of a batch failed (first: "
                f"{failed[0]}); this batch is not recorded, fix the backend and rerun to resume"
            )
        self.tokens += sum(a.tokens for a in answers)
        return answers

    def first(self, units: list[Unit]) -> list[dict]:
        """Attempt 1 for a chunk of units (in ``scratch``, first the sentences, which become
        the anchors)."""
        rejected: list[dict] = []
        if self.pool.mode == "scratch":
            units, rejected = self._sentences(units)
        return rejected + self.rows(asks_of(units, self._roles(), self.pool.mode))

    def rows(self, asks: list[Ask]) -> list[dict]:
        """Ask, parse and filter: the cheap filters, the teacher, duplicates, then feedback."""
        answers = self._answers(asks)
        make = self._query_rows if self.pool.mode == "query" else self._pair_rows
        rows = self._duplicates(self._teacher(make(asks, answers)))
        if self.settings.feedback:
            rows = self._feedback(rows)
        return [row if row["reason"] else row | {"raw": None} for row in rows]

    def _roles(self) -> list[str]:
        return [r for r in self.pool.roles if r != "sentence"]  # sentence: ``_sentences``

    def _sentences(self, units: list[Unit]) -> tuple[list[Unit], list[dict]]:
        """``scratch``: a sentence per unit from a sampled genre and topic; the units that got a
        usable new sentence (it is their text now), and the rows of those that did not."""
        asks = [self.pool.topic_messages(u.id, self.settings.seed) for u in units]
        answers = self.ask([turns for turns, _, _ in asks])
        live, rejected = [], []
        for unit, (_, prompt_id, subject), answer in zip(units, asks, answers, strict=True):
            sentence = parse_answer(answer.text, "sentence")
            reason = answer.error or text_reason(sentence, self.settings.filters)
            key = [normalised(sentence)] if reason is None else []
            if self.seen.holds_any(key):
                reason = "duplicate"
            if reason:
                row = self._row(unit.id, sentence or subject, None, None, prompt_id)
                rejected.append(
                    row | {"raw": json.dumps({"sentence": answer.text}), "reason": reason}
                )
            else:
                self.seen.add(key)
                live.append(Unit(unit.id, sentence))
        return live, rejected

    def _answers(self, asks: list[Ask]) -> list[dict[str, tuple[Completion, str]]]:
        """Each ask's (answer, prompt id) by role: the asked roles in one batch (role by role,
        so that requests sharing a few-shot prefix run together), the kept ones as they were."""
        seed, attempt = self.settings.seed, self.attempt
        requests = [
            (i, role) for role in self._roles() for i, a in enumerate(asks) if role in a.roles
        ]
        turns = [
            self.pool.messages(r, asks[i].unit.text, asks[i].unit.id, seed, attempt)
            for i, r in requests
        ]
        sampling = None
        if attempt > 1:
            sampling = [
                Sampling(
                    self.settings.retry_temperature,
                    self.settings.retry_top_p,
                    stream_seed(seed, asks[i].row, role, str(attempt)) % 2**31,  # any backend's
                )
                for i, role in requests
            ]
        done = self.ask([t for t, _ in turns], sampling)
        got = [
            {role: (Completion(text, 0), prompt) for role, (text, prompt) in a.kept.items()}
            for a in asks
        ]
        for (i, role), answer, (_, prompt) in zip(requests, done, turns, strict=True):
            got[i][role] = (answer, prompt)
        return got

    def _query_rows(self, asks: list[Ask], answers: list[dict]) -> list[dict]:
        """``query``: one row per query type, the passage as its positive, no hard negative."""
        rows = []
        for ask, got in zip(asks, answers, strict=True):
            [(role, (answer, prompt_id))] = got.items()
            query = parse_answer(answer.text, role)
            passage = ask.unit.text
            reason = answer.error or reject_reason(
                passage, query, None, self.settings.filters, with_negative=False
            )
            row = self._row(ask.row, query or passage, passage, None, prompt_id)
            rows.append(row | {"raw": json.dumps({role: answer.text}), "reason": reason})
        return rows

    def _pair_rows(self, asks: list[Ask], answers: list[dict]) -> list[dict]:
        """``partial``, ``scratch``: one row per unit, its positive and hard negative."""
        rows = []
        for ask, got in zip(asks, answers, strict=True):
            got = {role: got[role] for role in self._roles()}  # the pool's role order
            raw = {role: answer.text for role, (answer, _) in got.items()}
            errors = [answer.error for answer, _ in got.values() if answer.error]
            positive = parse_answer(raw["positive"], "positive")
            negative = parse_answer(raw["hard_negative"], "hard_negative")
            filters = self.settings.filters
            anchor = ask.unit.text
            reason = errors[0] if errors else reject_reason(anchor, positive, negative, filters)
            prompt_id = ";".join(p for _, p in got.values())
            row = self._row(ask.row, anchor, positive, negative, prompt_id)
            rows.append(row | {"raw": json.dumps(raw), "reason": reason})
        return rows

    def _row(self, rid, anchor, positive, negative, prompt_id) -> dict:
        pos_copy = copy_similarity(anchor, positive) if anchor and positive else 0.0
        return {
            "id": rid,
            "anchor": anchor,
            "positive": positive,
            "hard_negative": negative,
            "mode": self.pool.mode,
            "generator": self.backend.name,
            "prompt_id": prompt_id,
            "copy_similarity": pos_copy,
            "score": None,
            "teacher_positive": None,
            "teacher_negative": None,
            "attempt": self.attempt,
        }

    def _duplicates(self, rows: list[dict]) -> list[dict]:
        """A generated text already accepted for another row (a stock answer) is a duplicate;
        run after the teacher, so that only accepted texts count as seen."""
        out = []
        for row in rows:
            if row["reason"] is None:
                generated = (
                    [row["anchor"]]
                    if self.pool.mode == "query"
                    else [row["positive"], row["hard_negative"]]
                )
                keys = [normalised(t) for t in generated if t]
                if self.seen.holds_any(keys):
                    row = row | {"reason": "duplicate"}
                else:
                    self.seen.add(keys)
            out.append(row)
        return out

    def _teacher(self, rows: list[dict]) -> list[dict]:
        """The teacher's cosines of (anchor, positive) and (anchor, hard negative); a row whose
        margin is below ``teacher_margin`` is rejected (``teacher_disagrees``)."""
        if self.teacher is None:
            return rows
        live = [i for i, r in enumerate(rows) if r["reason"] is None]
        with_neg = [i for i in live if rows[i]["hard_negative"] is not None]
        pos = self.teacher.cosines(
            [rows[i]["anchor"] for i in live], [rows[i]["positive"] for i in live]
        )
        neg = self.teacher.cosines(
            [rows[i]["anchor"] for i in with_neg], [rows[i]["hard_negative"] for i in with_neg]
        )
        out = list(rows)
        for i, value in zip(live, pos, strict=True):
            out[i] = out[i] | {"teacher_positive": float(value)}
        margin = self.settings.teacher_margin
        for i, value in zip(with_neg, neg, strict=True):
            out[i] = out[i] | {"teacher_negative": float(value)}
            if margin is not None and out[i]["teacher_positive"] - value < margin:
                out[i] = out[i] | {"reason": "teacher_disagrees"}
        return out

    def _feedback(self, rows: list[dict]) -> list[dict]:
        """CLAIF-style: the generator scores each accepted pair 0-5 (column ``score``)."""
        live = [i for i, r in enumerate(rows) if r["reason"] is None]
        asks = [
            [
                {
                    "role": "user",
                    "content": FEEDBACK_PROMPT.format(a=rows[i]["anchor"], b=rows[i]["positive"]),
                }
            ]
            for i in live
        ]
        out = list(rows)
        for i, answer in zip(live, self.ask(asks), strict=True):
            out[i] = out[i] | {"score": _number(answer.text)}
        return out


def synthesize(
    corpus: pl.DataFrame | None,
    backend: Backend,
    pool: PromptPool,
    settings: SynthSettings,
    shards: str | Path,
    teacher: Teacher | None = None,
    on_chunk: Callable[[int, dict], None] | None = None,
    cache: str | Path | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, float]]:
    """Generate (or resume generating) pairs; returns (pairs, rejected, stats).

    ``shards`` is the folder of the append-only shards: a rerun with the same inputs and
    settings continues from it. ``on_chunk(step, figures)`` is called after each new shard
    (the CLI logs its figures to MLflow). With ``cache``, a finished table is stored under
    the fingerprint and any later run with the same fingerprint, in any experiment, reads it
    instead of generating: all of it, or its first ``max_attempts`` rounds (a damaged entry is
    discarded and generated again).
    """
    units = choose_units(corpus, pool.mode, settings)
    key = fingerprint(units, backend, pool, settings, teacher)
    cached = Path(cache) / key if cache else None
    if cached is not None and (cached / CHUNKS).exists():
        try:
            found = _from_cache(cached, settings.max_attempts)
        except (pl.exceptions.PolarsError, OSError, ValueError, KeyError) as err:
            log.warning("synthesis cache entry %s is damaged (%s); generating again", cached, err)
            shutil.rmtree(cached)
        else:
            if found is not None:
                return *_split(found[0]), found[1] | {"cache_hit": 1.0}
    store = ShardStore(shards, key)
    seen = Seen(entry["seen"] for _, entry in sorted(store.done.items()))  # see ``Seen``
    resumed = len(store.done)
    roles = [r for r in pool.roles if r != "sentence"]
    unit_of = {a.row: a.unit.id for a in asks_of(units, roles, pool.mode)}
    work: list = units  # attempt 1: units; later attempts: the asks of the rejected rows
    for attempt in range(1, settings.max_attempts + 1):
        if attempt > 1:
            previous = store.collect(attempt - 1)
            rejected = [] if previous is None else previous.filter(pl.col("reason").is_not_null())
            again = (
                ask_again(row, pool.mode, roles, unit_of, settings.filters)
                for row in (rejected.iter_rows(named=True) if len(rejected) else [])
            )
            work = [a for a in again if a is not None]
        if not work:  # nothing left to ask: more attempts would change nothing
            break
        _round(attempt, work, backend, pool, settings, teacher, store, seen, on_chunk)
    table = store.collect()
    if table is None:
        table = pl.DataFrame(schema=ROW_SCHEMA)
    chunks = [entry for _, entry in sorted(store.done.items())]
    stats = _stats(table, chunks)
    stats |= {
        "chunks_resumed": float(resumed),
        "chunks_generated": float(len(store.done) - resumed),
    }
    if cached is not None:  # rows first, the chunks last: their file marks a complete entry
        cached.mkdir(parents=True, exist_ok=True)
        atomic_write(cached / "rows.parquet", table.write_parquet)
        done = {"max_attempts": settings.max_attempts, "exhausted": not work, "chunks": chunks}
        write_text(cached / CHUNKS, json.dumps(done))
    return *_split(table), stats | {"cache_hit": 0.0}


CHUNKS = "chunks.json"  # a cache entry's record of its chunks, written last


def _from_cache(entry: Path, max_attempts: int) -> tuple[pl.DataFrame, dict] | None:
    """A cache entry's rows and stats cut to ``max_attempts`` rounds, or None when the entry
    holds fewer rounds than asked and more would have changed it."""
    done = json.loads((entry / CHUNKS).read_text())
    if done["max_attempts"] < max_attempts and not done["exhausted"]:
        return None
    table = pl.read_parquet(entry / "rows.parquet").filter(pl.col("attempt") <= max_attempts)
    chunks = [c for c in done["chunks"] if c["attempt"] <= max_attempts]
    return table, _stats(table, chunks) | {"chunks_resumed": 0.0, "chunks_generated": 0.0}


def _round(attempt, work, backend, pool, settings, teacher, store, seen, on_chunk) -> None:
    """One attempt over ``work`` (units, or asks again), chunk by chunk, skipping the chunks
    the store holds (a resumed run)."""
    size = settings.batch_size
    chunks = [work[i : i + size] for i in range(0, len(work), size)]
    todo = [i for i in range(len(chunks)) if (attempt, i) not in store.done]
    desc = "synthesize" if attempt == 1 else f"synthesize, attempt {attempt}"
    bar = tqdm(total=len(chunks), initial=len(chunks) - len(todo), desc=desc, unit="batch")
    for index in todo:
        started = time.perf_counter()
        seen.start_chunk()
        chunk = _Chunk(backend, pool, settings, teacher, seen, attempt)
        rows = chunk.first(chunks[index]) if attempt == 1 else chunk.rows(chunks[index])
        seconds = time.perf_counter() - started
        figures = {"units": len(chunks[index]), "tokens": chunk.tokens, "seconds": seconds}
        table = pl.DataFrame(rows, schema=ROW_SCHEMA)
        store.write((attempt, index), table, seen=seen.added, **figures)
        if on_chunk:  # numbered across rounds: the chunks recorded so far
            step = len(store.done) - 1
            on_chunk(step, figures | {"tokens_per_s": chunk.tokens / max(seconds, 1e-9)})
        bar.update()
    bar.close()


def _split(table: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The row table as (pairs, rejected): pairs sorted by id, every failed attempt in rejected
    sorted by id and attempt."""
    pairs = table.filter(pl.col("reason").is_null()).drop("raw", "reason", "attempt").sort("id")
    rejected = table.filter(pl.col("reason").is_not_null()).drop("copy_similarity", "score")
    return pairs, rejected.sort("id", "attempt")


def _stats(table: pl.DataFrame, entries: list[dict]) -> dict[str, float]:
    """Counts over the rows (each row once, however many attempts it took), per reason over
    every failed attempt, and per attempt: rows asked, accepted, tokens and seconds (from the
    chunks' manifest ``entries``)."""
    seconds = sum(e["seconds"] for e in entries)
    tokens = sum(e["tokens"] for e in entries)
    rows = table["id"].n_unique()
    accepted = int(table["reason"].is_null().sum())
    stats = {
        "units": float(sum(e["units"] for e in entries if e["attempt"] == 1)),
        SYNTH_ROWS: float(rows),
        SYNTH_ACCEPTED: float(accepted),
        "rejected": float(rows - accepted),
        "failed_attempts": float(table.height - accepted),
        "acceptance_rate": accepted / max(rows, 1),
        "rows_per_s": rows / max(seconds, 1e-9),
        "accepted_per_s": accepted / max(seconds, 1e-9),
        "tokens_per_s": tokens / max(seconds, 1e-9),
        "generated_tokens": float(tokens),
    }
    for (mode,), part in table.group_by("mode"):
        stats[f"acceptance_rate_{mode}"] = float(
            part["reason"].is_null().sum() / part["id"].n_unique()
        )
    for (reason,), part in table.filter(pl.col("reason").is_not_null()).group_by("reason"):
        key = rejected_metric(reason)
        stats[key] = stats.get(key, 0.0) + part.height
    for (attempt,), part in table.group_by("attempt"):
        mine = [e for e in entries if e["attempt"] == attempt]
        stats[attempt_metric("asked", attempt)] = float(part.height)
        stats[attempt_metric("accepted", attempt)] = float(part["reason"].is_null().sum())
        stats[attempt_metric("tokens", attempt)] = float(sum(e["tokens"] for e in mine))
        stats[attempt_metric("seconds", attempt)] = sum(e["seconds"] for e in mine)
    return stats


def samples_markdown(
    pairs: pl.DataFrame, rejected: pl.DataFrame, n: int = 10, seed: int = 0
) -> str:
    """``n`` accepted and ``n`` rejected rows as Markdown, for a look at what the filters did."""

    def table(df: pl.DataFrame, columns: list[str]) -> list[str]:
        df = df.sample(n=min(n, df.height), seed=seed) if df.height else df
        text = markdown.table(columns, df.select(columns).iter_rows(), align="l" * len(columns))
        return text.rstrip("\n").split("\n")

    base = ["anchor", "positive", "hard_negative"]
    return "\n".join(
        [
            f"## {n} accepted",
            "",
            *table(pairs, [*base, "teacher_positive", "teacher_negative"]),
            "",
            f"## {n} rejected",
            "",
            *table(rejected, [*base, "reason"]),
            "",
        ]
    )
