"""Prompt pools: several instruction variants per role and a pool of few-shot exemplars.

A pool is data (``config/prompts/<mode>.yaml``). Every request samples one instruction variant
and ``shots`` exemplars with a generator seeded by (seed, unit id, role, attempt), so the same
config and seed give the same prompts in any order, after any restart, on any number of workers.
SynCSE found prompts sampled from such pools beat one fixed prompt.

File layout::

    id: partial-pool-v1
    mode: partial                  # partial | scratch | query
    system: You rewrite sentences. Answer with one sentence only.
    shots: 2                       # exemplars per request
    exemplar_sets: 8               # draw each request's exemplars from this many seeded sets
    roles:
      positive:
        - {id: p1, text: "Paraphrase ... Sentence: {anchor}"}
        - {id: p2, text: "..."}
      hard_negative: [...]
    exemplars:                     # each holds the anchor and an answer for every role
      - {anchor: ..., positive: ..., hard_negative: ...}

``exemplar_sets`` bounds how many distinct few-shot prefixes a role has (null: a fresh draw per
request): requests that share a prefix share its KV cache in the transformers backend, which
on a CPU makes the prompt, otherwise most of the cost, nearly free.

Scratch pools add ``genres`` and ``topics`` lists and a ``sentence`` role whose text has
``{genre}`` and ``{topic}`` placeholders instead of ``{anchor}``. A template holds nothing else
in braces: a literal brace is written doubled (``{{"positive": ...}}`` shows as
``{"positive": ...}``), and any other field (``{anchor.__class__}``, ``{anchor!r}``, a JSON
example in single braces) is refused when the pool loads (:func:`check_template`).

Example::

    pool = PromptPool.load("config/prompts/partial.yaml")
    turns, prompt_id = pool.messages("positive", "The cat sleeps.", unit="ab12", seed=0)
"""

import hashlib
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from embedlab.schemas import DataError

ROLES_BY_MODE = {
    "partial": ("positive", "hard_negative"),
    "scratch": ("sentence", "positive", "hard_negative"),
    "query": ("question", "claim", "keywords"),
}


# The fields a template may hold, each as a bare name ("{anchor}"); the first is required.
# Literal braces are written doubled: "{{" and "}}".
TEMPLATE_FIELDS = {"answer": ("anchor",), "sentence": ("topic", "genre")}


def check_template(text: str, fields: Sequence[str], where: str) -> None:
    """Refuse a template that ``str.format`` would not fill with ``fields`` alone: an unknown
    field, an attribute or index (``{anchor.__class__}``), a conversion or format spec, an
    unpaired brace (a JSON example written with single braces), or the first field missing.

    >>> check_template('Sentence: {anchor}, as JSON {{"positive": "..."}}', ["anchor"], "t")
    >>> check_template('Answer {"positive": "..."}', ["anchor"], "pool.yaml")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    embedlab.schemas.DataError: pool.yaml: the template has the field '"positive": "..."'; ...
    """
    hint = f"only {', '.join('{' + f + '}' for f in fields)} are filled"
    hint += " (write a literal brace doubled: {{ or }})"
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as err:
        raise DataError(f"{where}: the template cannot be filled ({err}); {hint}") from None
    found = set()
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in fields or spec or conversion:
            shown = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            raise DataError(f"{where}: the template has the field {shown!r}; {hint}")
        found.add(name)
    if fields[0] not in found:
        raise DataError(f"{where}: the template has no {{{fields[0]}}}")


def stream_seed(seed: int, *parts: str) -> int:
    """A 64-bit seed that depends only on the seed and the given strings (not on call order)."""
    digest = hashlib.sha256("\x1f".join([str(seed), *parts]).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def unit_rng(seed: int, *parts: str) -> np.random.Generator:
    """A generator that depends only on the seed and the given strings (not on call order)."""
    return np.random.default_rng(stream_seed(seed, *parts))


@dataclass(frozen=True)
class Variant:
    id: str
    text: str


@dataclass(frozen=True)
class PromptPool:
    id: str
    mode: str
    system: str
    shots: int
    exemplar_sets: int | None
    roles: dict[str, list[Variant]]
    exemplars: list[dict[str, str]]
    genres: list[str]
    topics: list[str]

    @classmethod
    def load(cls, path: str | Path) -> "PromptPool":
        """Read and check a pool; errors name the file and the key."""
        data = yaml.safe_load(Path(path).read_text()) or {}
        missing = {"id", "mode", "system", "roles"} - set(data)
        if missing:
            raise DataError(f"{path}: prompt pool lacks key(s) {sorted(missing)}")
        mode = data["mode"]
        if mode not in ROLES_BY_MODE:
            raise DataError(f"{path}: mode {mode!r} is not one of {sorted(ROLES_BY_MODE)}")
        roles: dict[str, list[Variant]] = {}
        for role in ROLES_BY_MODE[mode]:
            variants = data["roles"].get(role)
            if not variants:
                raise DataError(f"{path}: roles.{role} has no instruction variants")
            fields = TEMPLATE_FIELDS["sentence" if role == "sentence" else "answer"]
            roles[role] = []
            for i, v in enumerate(variants):
                where = f"{path}: roles.{role}[{i}] (variant {v.get('id', '?')!r})"
                check_template(str(v.get("text", "")), fields, where)
                roles[role].append(Variant(str(v.get("id", f"{role}{i}")), v["text"]))
        exemplars = data.get("exemplars", [])
        answer_roles = [r for r in ROLES_BY_MODE[mode] if r != "sentence"]
        for i, ex in enumerate(exemplars):
            lacking = {"anchor", *answer_roles} - set(ex)
            if lacking:
                raise DataError(f"{path}: exemplars[{i}] lacks {sorted(lacking)}")
        shots = int(data.get("shots", 2))
        if shots > len(exemplars):
            raise DataError(f"{path}: shots={shots} but only {len(exemplars)} exemplars")
        if mode == "scratch" and not (data.get("genres") and data.get("topics")):
            raise DataError(f"{path}: a scratch pool needs non-empty genres and topics")
        return cls(
            id=str(data["id"]),
            mode=mode,
            system=str(data["system"]),
            shots=shots,
            exemplar_sets=data.get("exemplar_sets"),
            roles=roles,
            exemplars=exemplars,
            genres=list(data.get("genres", [])),
            topics=list(data.get("topics", [])),
        )

    def messages(
        self, role: str, anchor: str, unit: str, seed: int, attempt: int = 1
    ) -> tuple[list[dict[str, str]], str]:
        """The chat turns asking for ``role`` of ``anchor``, and the id of the sampled prompt.

        The id reads ``<pool>/<variant>/<exemplar indices>``, e.g. ``partial-v3/p2/4.1``. A
        later ``attempt`` (a row asked again) draws its variant and exemplars afresh.
        """
        rng = unit_rng(seed, unit, role, *([f"attempt {attempt}"] if attempt > 1 else []))
        variant = self.roles[role][int(rng.integers(len(self.roles[role])))]
        if self.exemplar_sets:  # one of a few seeded sets, shared by many requests
            which = str(int(rng.integers(self.exemplar_sets)))
            pick_rng = unit_rng(seed, self.id, role, which)
        else:
            pick_rng = rng
        picks = pick_rng.choice(len(self.exemplars), size=self.shots, replace=False).tolist()
        turns = [{"role": "system", "content": self.system}]
        for i in picks:
            ex = self.exemplars[i]
            turns.append({"role": "user", "content": variant.text.format(anchor=ex["anchor"])})
            turns.append({"role": "assistant", "content": ex[role]})
        turns.append({"role": "user", "content": variant.text.format(anchor=anchor)})
        return turns, f"{self.id}/{variant.id}/{'.'.join(map(str, picks))}"

    def topic_messages(self, unit: str, seed: int) -> tuple[list[dict[str, str]], str, str]:
        """Scratch mode: turns asking for a new sentence on a sampled genre and topic.

        Returns (turns, prompt id, "genre / topic")."""
        rng = unit_rng(seed, unit, "sentence")
        variant = self.roles["sentence"][int(rng.integers(len(self.roles["sentence"])))]
        genre = self.genres[int(rng.integers(len(self.genres)))]
        topic = self.topics[int(rng.integers(len(self.topics)))]
        turns = [
            {"role": "system", "content": self.system},
            {"role": "user", "content": variant.text.format(genre=genre, topic=topic)},
        ]
        return turns, f"{self.id}/{variant.id}", f"{genre} / {topic}"
