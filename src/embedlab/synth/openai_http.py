"""The ``openai`` backend: any OpenAI-compatible ``/v1/chat/completions`` server (OpenAI,
vLLM's server, llama.cpp's server, Ollama), over a small HTTP client of the standard library.

Requests run concurrently; ``timeout_s`` is a deadline for the whole answer (a server that
drips bytes does not hold a request longer); timeouts, dropped or truncated answers and 5xx are
retried with exponential backoff and full jitter, 429/503 wait as long as ``Retry-After`` says
(seconds or an HTTP date), all within ``max_attempts`` per request. The API key is read from the
environment variable named in the config and is sent only in the Authorization header; 401/403
stop the stage at once. Proxies are taken from the environment as urllib does.

Example::

    backend = OpenAIBackend("gpt-4o-mini", base_url="http://localhost:8000/v1", api_key_env=None)
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
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.message import Message

from embedlab.settings.synthesize import OpenAIOptions
from embedlab.synth.backends import BackendError, Completion, Conversation, Sampling, Samplings

log = logging.getLogger(__name__)

# An OpenAI-compatible server's answer is read up to this size (a completion of a few hundred
# tokens is a few kB); a larger one is rejected unread, so a faulty server cannot fill memory.
MAX_ANSWER_BYTES = 1 << 20


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

    def _one(
        self, conversation: Conversation, max_new_tokens: int, sampling: Sampling | None = None
    ) -> Completion:
        decoding = {"temperature": self.temperature, "seed": self.seed}
        if sampling is not None:
            decoding = {
                "temperature": sampling.temperature,
                "top_p": sampling.top_p,
                "seed": sampling.seed,
            }
        request = {"model": self.name, "messages": conversation, "max_tokens": max_new_tokens}
        body = json.dumps(request | decoding).encode()
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

    def chat(
        self, conversations: Sequence[Conversation], max_new_tokens: int, sampling: Samplings = None
    ) -> list[Completion]:
        sampling = list(sampling or [None] * len(conversations))
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(
                pool.map(lambda c, s: self._one(c, max_new_tokens, s), conversations, sampling)
            )
