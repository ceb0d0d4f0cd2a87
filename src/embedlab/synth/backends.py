"""Chat backends behind one interface: ``chat(conversations, max_new_tokens, sampling) ->
completions``. Requests are decoded greedily unless a request comes with a ``Sampling``
(temperature, top-p and the request's own seed: synthesis asks again that way for a row its
filters rejected, ``synth.generate``).

- ``TransformersBackend``: a local causal LM; prompts are batched with left padding, on CPU or
  GPU (the packaged SmolLM2-135M-Instruct is the offline default).
- ``OpenAIBackend`` (``synth.openai_http``): any OpenAI-compatible chat-completions server,
  concurrent requests with retries, deadlines and ``Retry-After``.
- ``LlamaCppBackend``: llama.cpp in-process on a GGUF file (``pip install llama-cpp-python``).
- ``VLLMBackend``: vLLM in-process for GPU throughput (``pip install vllm``).

The optional ones are imported only when chosen; without their package the stage stops with one
line naming what to install. A completion that the backend could not get is
``Completion(None, 0, error)``: a request the server refuses for good (4xx) becomes a rejected
row; a server that stays down, refuses the credentials, or refuses every request of a batch
raises ``BackendError``, and a rerun resumes from the shards already written.

Example::

    backend = make_backend("transformers", "HuggingFaceTB/SmolLM2-135M-Instruct")
    [c] = backend.chat([[{"role": "user", "content": "Paraphrase: The cat sleeps."}]], 32)
"""

import json
import logging
import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F

from embedlab.encode import default_device
from embedlab.errors import EmbedlabError, SettingError
from embedlab.resolve import model_identity, resolve_model

log = logging.getLogger(__name__)

Conversation = list[dict[str, str]]


@dataclass(frozen=True)
class Completion:
    text: str | None
    tokens: int  # generated tokens
    error: str | None = None


@dataclass(frozen=True)
class Sampling:
    """Sampled decoding of one request: its temperature, nucleus (``top_p``) and own seed. Each
    request draws from a generator seeded with ``seed`` alone, so its answer does not depend on
    the other requests of its batch or on their order (on the transformers backend; a server
    honours the seed as far as it can)."""

    temperature: float
    top_p: float
    seed: int  # under 2**31: what every backend takes (llama.cpp and servers: 32 bits)


Samplings = Sequence[Sampling | None] | None  # one per conversation (None: greedy)


class BackendError(EmbedlabError, RuntimeError):
    """The backend stayed unavailable after its retry budget."""


class Backend(Protocol):
    name: str  # recorded in each row's ``generator``
    identity: str  # what enters the shards' fingerprint: the weights' content where local

    def chat(
        self, conversations: Sequence[Conversation], max_new_tokens: int, sampling: Samplings = None
    ) -> list[Completion]:
        """One completion per conversation, in order: greedy, or as its ``Sampling`` says."""
        ...


class TransformersBackend:
    """Batched generation with a local transformers causal LM (a folder or a GGUF file)."""

    def __init__(
        self,
        name: str,
        mirrors: Sequence[str] = (),
        device: str | None = None,
        prefix_cache_size: int = 256,
    ):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        found = resolve_model(name, mirrors)
        kwargs = {"gguf_file": found.gguf_file} if found.gguf_file else {}
        self.tokenizer = AutoTokenizer.from_pretrained(found.path, **kwargs)
        self.tokenizer.padding_side = "left"  # generation continues from the right edge
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(found.path, **kwargs)
        device = device or default_device()
        if device.startswith("cuda"):
            self.model.to(torch.bfloat16)
        self.model.to(device).eval()
        self.name = name
        self.identity = model_identity(name, mirrors)  # the shards' key: content
        self.prefix_cache_size = prefix_cache_size
        self._cache: OrderedDict[tuple[int, ...], list] = OrderedDict()

    def prompt(self, conversation: Conversation) -> str:
        return self.tokenizer.apply_chat_template(
            conversation, tokenize=False, add_generation_prompt=True
        )

    def generate(self, prompts: Sequence[str], max_new_tokens: int) -> list[Completion]:
        """Greedy continuation of already-templated prompts, as one left-padded batch."""
        enc = self.tokenizer(list(prompts), return_tensors="pt", padding=True).to(self.model.device)
        with torch.inference_mode():
            out = self.model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        return self._completions(out[:, enc["input_ids"].shape[1] :])

    def chat(
        self, conversations: Sequence[Conversation], max_new_tokens: int, sampling: Samplings = None
    ) -> list[Completion]:
        """Generate for whole conversations, reusing the KV cache of their shared prefixes.

        Everything before the last user turn (system text, few-shot turns) is a prefix that
        many requests share (prompt pools draw from a few exemplar sets); its keys and values
        are computed once and kept (``prefix_cache_size`` of them). A request then costs only
        its last turn plus the answer: on a CPU the prompt, not the answer, is most of the work.
        The token ids are the prefix's followed by the last turn's, as without the cache.
        """
        from transformers import DynamicCache

        sampling = list(sampling or [None] * len(conversations))
        prefixes, suffixes = [], []
        for conversation in conversations:
            full = self.prompt(conversation)
            head = self.tokenizer.apply_chat_template(conversation[:-1], tokenize=False)
            if len(conversation) < 2 or not full.startswith(head):  # no shared prefix to keep
                prompts = [self.prompt(c) for c in conversations]
                enc = self.tokenizer(prompts, return_tensors="pt", padding=True)
                enc = enc.to(self.model.device)
                ids, mask = enc["input_ids"], enc["attention_mask"]
                return self._decode(ids, mask, DynamicCache(), max_new_tokens, sampling)
            prefixes.append(self._ids(head))
            suffixes.append(self._ids(full[len(head) :]))
        return self._generate_cached(prefixes, suffixes, max_new_tokens, sampling)

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _prefix(self, ids: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        key = tuple(ids)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        with torch.inference_mode():
            out = self.model(
                input_ids=torch.tensor([ids], device=self.model.device),
                use_cache=True,
                logits_to_keep=1,  # only the caches are wanted, not 49k logits per position
            )
        cache = out.past_key_values if getattr(out, "cache", None) is None else out.cache
        self._cache[key] = [(k, v) for k, v, *_ in cache]
        if len(self._cache) > self.prefix_cache_size:
            self._cache.popitem(last=False)
        return self._cache[key]

    def _generate_cached(
        self,
        prefixes: list[list[int]],
        suffixes: list[list[int]],
        max_new_tokens: int,
        sampling: list[Sampling | None],
    ) -> list[Completion]:
        from transformers import DynamicCache

        pad = self.tokenizer.pad_token_id
        lp, ls = max(map(len, prefixes)), max(map(len, suffixes))
        per_row = [self._prefix(p) for p in prefixes]
        layers = []
        for layer in range(len(per_row[0])):  # left-pad every row's prefix KV to the longest
            k = [
                F.pad(row[layer][0], (0, 0, lp - len(p), 0))
                for row, p in zip(per_row, prefixes, strict=True)
            ]
            v = [
                F.pad(row[layer][1], (0, 0, lp - len(p), 0))
                for row, p in zip(per_row, prefixes, strict=True)
            ]
            layers.append((torch.cat(k), torch.cat(v)))
        ids, mask = [], []
        for p, s in zip(prefixes, suffixes, strict=True):  # [pad][prefix][pad][last turn]
            ids.append([pad] * (lp - len(p)) + p + [pad] * (ls - len(s)) + s)
            mask.append([0] * (lp - len(p)) + [1] * len(p) + [0] * (ls - len(s)) + [1] * len(s))
        device = self.model.device
        cache = DynamicCache(ddp_cache_data=layers)
        ids_t, mask_t = torch.tensor(ids, device=device), torch.tensor(mask, device=device)
        return self._decode(ids_t, mask_t, cache, max_new_tokens, sampling)

    def _decode(
        self,
        ids: torch.Tensor,
        mask: torch.Tensor,
        cache,
        max_new_tokens: int,
        sampling: list[Sampling | None],
    ) -> list[Completion]:
        """Decoding that drops each row from the batch as soon as it has ended; greedy, or each
        sampled row from its own seeded generator (``Sampling``).

        ``model.generate`` keeps every row until the longest answer ends; one rambling answer
        then costs the whole batch its steps (measured: 63 of 64 answers done by 17 tokens,
        one ran to the limit). Rows are removed from the cache instead, so the batch shrinks.
        """
        eos = self.model.generation_config.eos_token_id
        eos = torch.tensor([eos] if isinstance(eos, int) else list(eos or []), device=ids.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        past = cache.get_seq_length()
        step_ids, step_pos = ids[:, past:], positions[:, past:]
        alive = torch.arange(ids.shape[0], device=ids.device)  # batch row -> request
        answers: list[list[int]] = [[] for _ in range(ids.shape[0])]
        draws = [
            torch.Generator(ids.device).manual_seed(s.seed) if s and s.temperature > 0 else None
            for s in sampling
        ]
        with torch.inference_mode():
            for step in range(max_new_tokens):
                out = self.model(
                    input_ids=step_ids,
                    attention_mask=mask,
                    position_ids=step_pos,
                    cache=cache,
                    use_cache=True,
                    logits_to_keep=1,
                )
                cache = out.past_key_values if getattr(out, "cache", None) is None else out.cache
                logits = out.logits[:, -1]
                token = logits.argmax(-1)
                for row, request in enumerate(alive.tolist()):
                    if draws[request] is not None:
                        token[row] = _sample(logits[row], sampling[request], draws[request])
                ended = torch.isin(token, eos)
                for row, t, e in zip(alive.tolist(), token.tolist(), ended.tolist(), strict=True):
                    if not e:
                        answers[row].append(t)
                keep = (~ended).nonzero().flatten()
                if step + 1 == max_new_tokens or len(keep) == 0:
                    break
                if len(keep) < len(alive):
                    cache.batch_select_indices(keep)
                    alive, mask, token = alive[keep], mask[keep], token[keep]
                    step_pos = step_pos[keep]
                mask = torch.cat([mask, mask.new_ones(len(alive), 1)], dim=1)
                step_ids, step_pos = token[:, None], step_pos[:, -1:] + 1
        texts = self.tokenizer.batch_decode(answers, skip_special_tokens=True)
        return [Completion(t, len(a)) for t, a in zip(texts, answers, strict=True)]

    def _completions(self, new: torch.Tensor) -> list[Completion]:
        counts = (new != self.tokenizer.pad_token_id).sum(dim=1).tolist()
        texts = self.tokenizer.batch_decode(new, skip_special_tokens=True)
        return [Completion(t, int(n)) for t, n in zip(texts, counts, strict=True)]


def _sample(logits: torch.Tensor, s: Sampling, generator: torch.Generator) -> torch.Tensor:
    """One token from ``softmax(logits / temperature)`` restricted to the smallest set of tokens
    whose probability reaches ``top_p`` (the nucleus), drawn with ``generator``."""
    probs = torch.softmax(logits.float() / s.temperature, dim=-1)
    if s.top_p >= 1.0:
        return torch.multinomial(probs, 1, generator=generator)[0]
    ranked, order = probs.topk(min(NUCLEUS_FIRST, len(probs)))  # the nucleus is nearly always
    if ranked.sum() < s.top_p:  # among these; a full sort (49k tokens a step) only if not
        ranked, order = probs.sort(descending=True)
    ranked = ranked.masked_fill(ranked.cumsum(-1) - ranked >= s.top_p, 0.0)  # past the nucleus
    return order[torch.multinomial(ranked, 1, generator=generator)[0]]


NUCLEUS_FIRST = 64  # tokens ranked before the nucleus is looked for among all of them


class VLLMBackend:
    """vLLM in-process (``pip install vllm``; a GPU), the whole batch in one call."""

    def __init__(self, name: str, mirrors: Sequence[str] = (), seed: int = 0):
        try:
            from vllm import LLM, SamplingParams
        except ImportError:
            raise SettingError(
                "synthesize.backend 'vllm' needs the vllm package (pip install vllm, on a GPU "
                "machine); the 'transformers' backend runs without it"
            ) from None
        found = resolve_model(name, mirrors)
        self.name = name
        self.identity = model_identity(name, mirrors)
        self._llm = LLM(model=str(found.path), seed=seed)
        self._params = SamplingParams
        self.seed = seed

    def chat(
        self, conversations: Sequence[Conversation], max_new_tokens: int, sampling: Samplings = None
    ) -> list[Completion]:
        params = [
            self._params(temperature=0.0, max_tokens=max_new_tokens, seed=self.seed)
            if s is None
            else self._params(
                temperature=s.temperature, top_p=s.top_p, max_tokens=max_new_tokens, seed=s.seed
            )
            for s in sampling or [None] * len(conversations)
        ]
        outputs = self._llm.chat(list(conversations), params, use_tqdm=False)
        return [Completion(o.outputs[0].text, len(o.outputs[0].token_ids)) for o in outputs]


class LlamaCppBackend:
    """llama.cpp in-process (``llama-cpp-python``) on a GGUF file, on the CPU's cores.

    Requests run one at a time (the Python API has no batch), ordered so that conversations
    sharing a few-shot prefix follow one another: llama.cpp keeps the previous prompt's KV cache
    and evaluates only the tokens after the common prefix. Results come back in input order.
    """

    def __init__(
        self, name: str, mirrors: Sequence[str] = (), seed: int = 0, threads: int | None = None
    ):
        try:
            from llama_cpp import Llama
        except ImportError:
            raise SettingError(
                "synthesize.backend 'llama.cpp' needs llama-cpp-python (pip install "
                "llama-cpp-python: built from source, with cmake and a C++ compiler); the "
                "'transformers' backend runs without it"
            ) from None
        found = resolve_model(name, mirrors)
        if not found.gguf_file:
            raise SettingError(
                f"synthesize.backend 'llama.cpp' reads a GGUF file; {name!r} resolved to "
                f"{found.path} ({found.where}), which has none: use backend 'transformers'"
            )
        self.name = name
        self.identity = model_identity(name, mirrors)
        threads = threads or int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)
        self._llm = Llama(
            model_path=os.path.join(found.path, found.gguf_file),
            n_ctx=4096,
            n_threads=threads,
            seed=seed,
            verbose=False,
        )

    def chat(
        self, conversations: Sequence[Conversation], max_new_tokens: int, sampling: Samplings = None
    ) -> list[Completion]:
        order = sorted(range(len(conversations)), key=lambda i: json.dumps(conversations[i][:-1]))
        sampling = list(sampling or [None] * len(conversations))
        out: list[Completion] = [Completion(None, 0)] * len(conversations)
        for i in order:
            s = sampling[i]
            decoding = (
                {"temperature": 0.0}
                if s is None
                else {"temperature": s.temperature, "top_p": s.top_p, "seed": s.seed}
            )
            try:
                answer = self._llm.create_chat_completion(
                    list(conversations[i]), max_tokens=max_new_tokens, **decoding
                )
            except ValueError as err:  # a prompt longer than the context
                out[i] = Completion(None, 0, f"backend_error: {str(err)[:200]}")
                continue
            text = answer["choices"][0]["message"]["content"]
            out[i] = Completion(text, int(answer["usage"]["completion_tokens"]))
        return out


BACKENDS = ("transformers", "llama.cpp", "openai", "vllm")


def make_backend(
    kind: str, model: str, mirrors: Sequence[str] = (), seed: int = 0, **options
) -> Backend:
    """The backend named in the config (one of ``BACKENDS``)."""
    if kind == "transformers":
        return TransformersBackend(model, mirrors, options.get("device"))
    if kind == "llama.cpp":
        return LlamaCppBackend(model, mirrors, seed=seed)
    if kind == "openai":
        from embedlab.synth.openai_http import OpenAIBackend

        return OpenAIBackend(model, seed=seed, **options)
    if kind == "vllm":
        return VLLMBackend(model, mirrors, seed=seed)
    raise SettingError(f"unknown synthesize backend {kind!r}; known: {', '.join(BACKENDS)}")
