"""Batched generation of (positive, hard negative) pairs with a local transformers LLM.

Anchors are sorted by length and generated in left-padded batches with greedy decoding, so the
same config gives the same pairs. Every anchor ends in pairs.parquet or rejected.parquet.

Example::

    llm = load_llm("HuggingFaceTB/SmolLM2-135M-Instruct")
    template = PromptTemplate.load("config/prompts/partial.yaml")
    pairs, rejected, stats = synthesize(corpus, llm, template, n_anchors=100)
"""

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import torch
import yaml
from tqdm.auto import tqdm

from embedlab.resolve import resolve_model
from embedlab.schemas import Pairs, Rejected, polars_schema
from embedlab.synth.filters import copy_similarity, first_sentence, reject_reason

ROLES = ("positive", "hard_negative")


@dataclass(frozen=True)
class RolePrompt:
    instruction: str  # with an {anchor} placeholder
    exemplars: list[dict[str, str]] = field(default_factory=list)  # {anchor, output}


@dataclass(frozen=True)
class PromptTemplate:
    """A chat prompt per role with few-shot exemplars, read from config/prompts/*.yaml.

    Prompts are data, not code: the file gives the system text and, for each role
    (``positive``, ``hard_negative``), the instruction and the exemplars.
    """

    id: str
    system: str
    roles: dict[str, RolePrompt]

    @classmethod
    def load(cls, path: str | Path) -> "PromptTemplate":
        data = yaml.safe_load(Path(path).read_text())
        missing = {"id", "system", "roles"} - set(data or {})
        if missing:
            raise ValueError(f"{path}: prompt template lacks key(s) {sorted(missing)}")
        absent = set(ROLES) - set(data["roles"])
        if absent:
            raise ValueError(f"{path}: roles lack {sorted(absent)}")
        roles = {}
        for role in ROLES:
            spec = data["roles"][role]
            if "{anchor}" not in spec.get("instruction", ""):
                raise ValueError(f"{path}: roles.{role}.instruction has no {{anchor}} placeholder")
            roles[role] = RolePrompt(spec["instruction"], spec.get("exemplars", []))
        return cls(id=data["id"], system=data["system"], roles=roles)

    def messages(self, role: str, anchor: str) -> list[dict[str, str]]:
        """The chat turns that ask for ``role`` (positive or hard_negative) of ``anchor``."""
        spec = self.roles[role]
        turns = [{"role": "system", "content": self.system}]
        for ex in spec.exemplars:
            turns.append({"role": "user", "content": spec.instruction.format(anchor=ex["anchor"])})
            turns.append({"role": "assistant", "content": ex["output"]})
        turns.append({"role": "user", "content": spec.instruction.format(anchor=anchor)})
        return turns


@dataclass
class LLM:
    name: str
    model: torch.nn.Module
    tokenizer: object

    def generate(self, prompts: Sequence[str], max_new_tokens: int) -> tuple[list[str], int]:
        """Greedy generation for a batch of prompts; returns texts and the count of new tokens."""
        enc = self.tokenizer(list(prompts), return_tensors="pt", padding=True).to(self.model.device)
        with torch.inference_mode():
            out = self.model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        new = out[:, enc["input_ids"].shape[1] :]
        n_tokens = int((new != self.tokenizer.pad_token_id).sum())
        return self.tokenizer.batch_decode(new, skip_special_tokens=True), n_tokens


def load_llm(name: str, mirrors: Sequence[str] = (), device: str | None = None) -> LLM:
    """Load a causal LM (a folder or a GGUF file, through transformers) for batched generation."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    found = resolve_model(name, mirrors)
    kwargs = {"gguf_file": found.gguf_file} if found.gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(found.path, **kwargs)
    tokenizer.padding_side = "left"  # generation continues from the right edge
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(found.path, **kwargs)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()
    return LLM(name=name, model=model, tokenizer=tokenizer)


def synthesize(
    corpus: pl.DataFrame,
    llm: LLM,
    template: PromptTemplate,
    n_anchors: int,
    batch_size: int = 16,
    max_new_tokens: int = 64,
    copy_threshold: float = 0.9,
    seed: int = 0,
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, float]]:
    """Generate pairs for ``n_anchors`` anchors drawn from ``corpus`` with ``seed``.

    Returns (pairs, rejected, stats); every chosen anchor is in exactly one of the two tables.
    """
    anchors = corpus.sample(n=min(n_anchors, corpus.height), seed=seed, shuffle=True)
    anchors = anchors.sort(pl.col("text").str.len_chars(), "id")  # less padding per batch
    accepted, rejected = [], []
    n_tokens, started = 0, time.perf_counter()
    rows = anchors.to_dicts()
    for start in tqdm(range(0, len(rows), batch_size), desc="synthesize", unit="batch"):
        chunk = rows[start : start + batch_size]
        answers = {}
        for role in ROLES:
            prompts = [
                llm.tokenizer.apply_chat_template(
                    template.messages(role, r["text"]), tokenize=False, add_generation_prompt=True
                )
                for r in chunk
            ]
            answers[role], tokens = llm.generate(prompts, max_new_tokens)
            n_tokens += tokens
        for i, row in enumerate(chunk):
            raw = {role: answers[role][i] for role in ROLES}
            positive, negative = (first_sentence(raw[role]) for role in ROLES)
            reason = reject_reason(row["text"], positive, negative, copy_threshold)
            base = {
                "id": row["id"],
                "anchor": row["text"],
                "positive": positive,
                "hard_negative": negative,
                "mode": "partial",
                "generator": llm.name,
                "prompt_id": template.id,
            }
            if reason is None:
                accepted.append({**base, "copy_similarity": copy_similarity(row["text"], positive)})
            else:
                rejected.append({**base, "raw": json.dumps(raw), "reason": reason})
    elapsed = time.perf_counter() - started
    pairs = pl.DataFrame(accepted, schema=polars_schema(Pairs)).sort("id")
    rej = pl.DataFrame(rejected, schema=polars_schema(Rejected)).sort("id")
    stats = {
        "anchors": float(len(rows)),
        "accepted": float(pairs.height),
        "rejected": float(rej.height),
        "acceptance_rate": pairs.height / max(len(rows), 1),
        "rows_per_s": len(rows) / max(elapsed, 1e-9),
        "tokens_per_s": n_tokens / max(elapsed, 1e-9),
    }
    for reason, count in rej.group_by("reason").len().iter_rows():
        stats[f"rejected_{reason}"] = float(count)
    return pairs, rej, stats
