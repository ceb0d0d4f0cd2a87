"""Chat backends behind one interface: ``chat(conversations, max_new_tokens) -> completions``.

- ``TransformersBackend``: a local causal LM; prompts are batched with left padding and decoded
  greedily, on CPU or GPU (the packaged SmolLM2-135M-Instruct is the offline default).
- ``OpenAIBackend``: any OpenAI-compatible ``/v1/chat/completions`` server (OpenAI, vLLM's
  server, llama.cpp's server, Ollama). Requests run concurrently; ``timeout_s`` is a deadline
  for the whole answer (a server that drips bytes does not hold a request longer); timeouts,
  dropped or truncated answers and 5xx are retried with exponential backoff and full jitter,
  429/503 wait as long as ``Retry-After`` says (seconds or an HTTP date), all within
  ``max_attempts`` per request. The API key is read from the environment variable named in
  the config and is sent only in the Authorization header; 401/403 stop the stage at once.
- ``VLLMBackend``: vLLM in-process for GPU throughput; imported only when chosen.

A completion that the backend could not get is ``Completion(None, 0, error)``: a request the
server refuses for good (4xx) becomes a rejected row; a server that stays down, refuses the
credentials, or refuses every request of a batch raises ``BackendError``, and a rerun resumes
from the shards already written.

Example::

    backend = make_backend("transformers", "HuggingFaceTB/SmolLM2-135M-Instruct")
    [c] = backend.chat([[{"role": "user", "content": "Paraphrase: The cat sleeps."}]], 32)
"""

import base64
import contextlib
import email.utils
import http.client
import json
import logging
import os
import random
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from typing import Protocol

import torch
import torch.nn.functional as F

from embedlab.encode import default_device
from embedlab.errors import EmbedlabError, SettingError
from embedlab.resolve import model_identity, resolve_model
from embedlab.settings.synthesize import OpenAIOptions

log = logging.getLogger(__name__)

# An OpenAI-compatible server's answer is read up to this size (a completion of a few hundred
# tokens is a few kB); a larger one is rejected unread, so a faulty server cannot fill memory.
MAX_ANSWER_BYTES = 1 << 20

Conversation = list[dict[str, str]]


@dataclass(frozen=True)
class Completion:
    text: str | None
    tokens: int  # generated tokens
    error: str | None = None


class BackendError(EmbedlabError, RuntimeError):
    """The backend stayed unavailable after its retry budget."""


class Backend(Protocol):
    name: str  # recorded in each row's ``generator``
    identity: str  # what enters the shards' fingerprint: the weights' content where local

    def chat(self, conversations: Sequence[Conversation], max_new_tokens: int) -> list[Completion]:
        """One completion per conversation, in order (greedy where the backend allows)."""
        ...


class TransformersBackend:
    """Batched greedy generation with a local transformers causal LM (a folder or a GGUF file)."""

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

    def chat(self, conversations: Sequence[Conversation], max_new_tokens: int) -> list[Completion]:
        """Generate for whole conversations, reusing the KV cache of their shared prefixes.

        Everything before the last user turn (system text, few-shot turns) is a prefix that
        many requests share (prompt pools draw from a few exemplar sets); its keys and values
        are computed once and kept (``prefix_cache_size`` of them). A request then costs only
        its last turn plus the answer: on a CPU the prompt, not the answer, is most of the work.
        The token ids are the prefix's followed by the last turn's, as without the cache.
        """
        prefixes, suffixes = [], []
        for conversation in conversations:
            full = self.prompt(conversation)
            head = self.tokenizer.apply_chat_template(conversation[:-1], tokenize=False)
            if len(conversation) < 2 or not full.startswith(head):
                return self.generate([self.prompt(c) for c in conversations], max_new_tokens)
            prefixes.append(self._ids(head))
            suffixes.append(self._ids(full[len(head) :]))
        return self._generate_cached(prefixes, suffixes, max_new_tokens)

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
        self, prefixes: list[list[int]], suffixes: list[list[int]], max_new_tokens: int
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
        return self._greedy(ids_t, mask_t, cache, max_new_tokens)

    def _greedy(self, ids: torch.Tensor, mask: torch.Tensor, cache, max_new_tokens: int):
        """Greedy decoding that drops each row from the batch as soon as it has ended.

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
                token = out.logits[:, -1].argmax(-1)
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


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: a number, or an HTTP date (RFC 9110).

    >>> retry_after("2.5")
    2.5
    >>> retry_after("Wed, 21 Oct 2015 07:28:00 GMT")  # in the past: no wait
    0.0
    """
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _connection(
    url: str, timeout_s: float
) -> tuple[http.client.HTTPConnection, str, dict[str, str]]:
    """A connection for ``url``, the request target and any header the proxy needs, through the
    proxy that the environment names (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``: the
    variables urllib honours)."""
    parts = urllib.parse.urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    https = parts.scheme == "https"
    proxy = urllib.request.getproxies().get(parts.scheme)
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        kind = http.client.HTTPSConnection if https else http.client.HTTPConnection
        return kind(parts.hostname, parts.port, timeout=timeout_s), target, {}
    via = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    headers = {}
    if via.username:  # user:password@proxy
        token = base64.b64encode(f"{via.username}:{via.password or ''}".encode()).decode()
        headers["Proxy-Authorization"] = f"Basic {token}"
    if https:  # a CONNECT tunnel, TLS end to end
        conn = http.client.HTTPSConnection(via.hostname, via.port or 80, timeout=timeout_s)
        conn.set_tunnel(parts.hostname, parts.port or 443, headers=headers)
        return conn, target, {}
    conn = http.client.HTTPConnection(via.hostname, via.port or 80, timeout=timeout_s)
    return conn, url, headers  # a plain-HTTP proxy takes the absolute URL


def _completion(payload: bytes) -> Completion:
    """The first choice of a chat-completions answer, or a ``parse`` error row."""
    try:
        answer = json.loads(payload)
        choice = answer["choices"][0]["message"]["content"]
        tokens = int((answer.get("usage") or {}).get("completion_tokens") or 0)
    except (KeyError, IndexError, TypeError, ValueError) as err:
        return Completion(None, 0, f"parse: malformed response ({type(err).__name__})")
    return Completion(choice if isinstance(choice, str) else None, tokens)


class OpenAIBackend:
    """Concurrent chat-completions requests to an OpenAI-compatible server."""

    def __init__(
        self,
        model: str,
        base_url: str = OpenAIOptions.base_url,
        api_key_env: str | None = OpenAIOptions.api_key_env,
        concurrency: int = OpenAIOptions.concurrency,
        timeout_s: float = OpenAIOptions.timeout_s,
        max_attempts: int = OpenAIOptions.max_attempts,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        seed: int = 0,
        temperature: float = 0.0,
    ):
        self.name = model
        self.identity = model  # a remote model: its name is all that is known of it
        self.url = base_url.rstrip("/") + "/chat/completions"
        from embedlab.preflight import check_env_name

        check_env_name("openai api_key_env", api_key_env)
        self._key = os.environ.get(api_key_env or "", "") or None  # never logged or stored
        if api_key_env and self._key is None:
            log.warning(
                "$%s is not set: requests to %s go without an API key", api_key_env, base_url
            )
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.seed = seed
        self.temperature = temperature
        self.retries = 0  # retried requests, for the stage's metrics

    def __repr__(self) -> str:  # the key stays out of any repr a log might print
        return f"OpenAIBackend(model={self.name!r}, url={self.url!r})"

    def _post(self, body: bytes) -> tuple[int, Message, bytes]:
        """One request: (status, headers, body), all of it within ``timeout_s``: each read waits
        at most ``timeout_s``, and at the deadline a watchdog makes the next read give up at once
        (a server dripping a byte at a time cannot hold the request longer)."""
        conn, path, proxy_headers = _connection(self.url, self.timeout_s)
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        headers |= proxy_headers
        expired = threading.Event()
        opened: list[socket.socket] = []  # the connection's socket (conn.sock is dropped when
        # the response is read to close)

        def expire() -> None:
            expired.set()
            for sock in opened:  # Linux keeps delivering data after shutdown(SHUT_RD) alone
                sock.settimeout(1e-3)
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

        watchdog = threading.Timer(self.timeout_s, expire)
        watchdog.daemon = True
        watchdog.start()
        try:
            conn.request("POST", path, body, headers)
            opened.append(conn.sock)
            if expired.is_set():
                raise TimeoutError
            response = conn.getresponse()
            payload = response.read(MAX_ANSWER_BYTES + 1)  # a larger answer is not read on
            if len(payload) <= MAX_ANSWER_BYTES and response.length:  # bytes promised, not sent
                raise http.client.IncompleteRead(payload, response.length)
        except (http.client.HTTPException, OSError) as err:
            if expired.is_set():
                raise TimeoutError(f"no whole answer within {self.timeout_s:g} s") from err
            raise
        finally:
            watchdog.cancel()
            conn.close()
        if expired.is_set():
            raise TimeoutError(f"no whole answer within {self.timeout_s:g} s")
        return response.status, response.headers, payload

    def _one(self, conversation: Conversation, max_new_tokens: int) -> Completion:
        body = json.dumps(
            {
                "model": self.name,
                "messages": conversation,
                "max_tokens": max_new_tokens,
                "temperature": self.temperature,
                "seed": self.seed,
            }
        ).encode()
        last = ""
        for attempt in range(self.max_attempts):
            wait = min(self.max_backoff_s, self.backoff_s * 2**attempt) * random.random()
            try:
                status, headers, payload = self._post(body)
            except (OSError, http.client.HTTPException) as err:  # timeouts, resets, cut bodies
                last = type(err).__name__ if not str(err) else f"{type(err).__name__}: {err}"
            else:
                if 200 <= status < 300 and len(payload) > MAX_ANSWER_BYTES:
                    reason = f"answer_too_large: over {MAX_ANSWER_BYTES} bytes"
                    return Completion(None, 0, reason)
                if 200 <= status < 300:
                    return _completion(payload)
                last = f"HTTP {status}"
                if status in (401, 403):
                    raise BackendError(
                        f"{self.url}: {last}, the server refuses the credentials (the key in "
                        f"${self.api_key_env or '<no api_key_env>'}); fix it and rerun: what was "
                        "generated so far is kept"
                    )
                if status in (429, 503):
                    after = retry_after(headers.get("Retry-After"))
                    wait = wait if after is None else min(self.max_backoff_s, after)
                elif 400 <= status < 500:
                    return Completion(None, 0, f"backend_error: {last}")
            if attempt + 1 < self.max_attempts:
                self.retries += 1
                time.sleep(wait)
        raise BackendError(
            f"{self.url}: no answer after {self.max_attempts} attempts (last: {last}); "
            "what was generated so far is kept, rerun to resume"
        )

    def chat(self, conversations: Sequence[Conversation], max_new_tokens: int) -> list[Completion]:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(lambda c: self._one(c, max_new_tokens), conversations))


class VLLMBackend:
    """vLLM in-process (``pip install vllm``; a GPU), greedy decoding over the whole batch."""

    def __init__(self, name: str, mirrors: Sequence[str] = (), seed: int = 0, **engine_args):
        try:
            from vllm import LLM, SamplingParams
        except ImportError as err:
            raise ImportError(
                "synthesize.backend 'vllm' needs the vllm package (pip install vllm, on a GPU "
                "machine); the 'transformers' backend runs without it"
            ) from err
        found = resolve_model(name, mirrors)
        self.name = name
        self.identity = model_identity(name, mirrors)
        self._llm = LLM(model=str(found.path), seed=seed, **engine_args)
        self._params = SamplingParams
        self.seed = seed

    def chat(self, conversations: Sequence[Conversation], max_new_tokens: int) -> list[Completion]:
        params = self._params(temperature=0.0, max_tokens=max_new_tokens, seed=self.seed)
        outputs = self._llm.chat(list(conversations), params, use_tqdm=False)
        return [Completion(o.outputs[0].text, len(o.outputs[0].token_ids)) for o in outputs]


class LlamaCppBackend:
    """llama.cpp in-process (``llama-cpp-python``) on a GGUF file, greedy, on the CPU's cores.

    Requests run one at a time (the Python API has no batch), ordered so that conversations
    sharing a few-shot prefix follow one another: llama.cpp keeps the previous prompt's KV cache
    and evaluates only the tokens after the common prefix. Results come back in input order.
    """

    def __init__(
        self, name: str, mirrors: Sequence[str] = (), seed: int = 0, threads: int | None = None
    ):
        try:
            from llama_cpp import Llama
        except ImportError as err:
            raise ImportError(
                "synthesize.backend 'llama.cpp' needs llama-cpp-python (pip install "
                "llama-cpp-python: built from source, with cmake and a C++ compiler); the "
                "'transformers' backend runs without it"
            ) from err
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

    def chat(self, conversations: Sequence[Conversation], max_new_tokens: int) -> list[Completion]:
        order = sorted(range(len(conversations)), key=lambda i: json.dumps(conversations[i][:-1]))
        out: list[Completion] = [Completion(None, 0)] * len(conversations)
        for i in order:
            try:
                answer = self._llm.create_chat_completion(
                    list(conversations[i]), max_tokens=max_new_tokens, temperature=0.0
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
        return OpenAIBackend(model, seed=seed, **options)
    if kind == "vllm":
        return VLLMBackend(model, mirrors, seed=seed, **options)
    raise SettingError(f"unknown synthesize backend {kind!r}; known: {', '.join(BACKENDS)}")
