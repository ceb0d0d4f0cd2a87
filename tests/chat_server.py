"""A real HTTP server speaking OpenAI's chat-completions protocol, for tests.

It answers ``POST /v1/chat/completions`` with ``answer(messages)``; a script of faults can be
queued: ``"500"`` (server error), ``"429"`` (rate limit with ``Retry-After``), ``"400"``,
``"stall"`` (sleeps longer than the client's timeout), ``"garbage"`` (200 with a body that is
not a chat completion). Every request's Authorization header and body are recorded.
"""

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ChatServer:
    def __init__(self, answer: Callable[[list[dict]], str], stall_s: float = 2.0):
        self.answer = answer
        self.stall_s = stall_s
        self.faults: deque[str] = deque()
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                with server.lock:
                    fault = server.faults.popleft() if server.faults else None
                    server.requests.append(
                        {"auth": self.headers.get("Authorization"), "body": body, "fault": fault}
                    )
                if fault == "stall":
                    time.sleep(server.stall_s)
                    return self._send(200, {"choices": []})
                if fault in ("500", "400"):
                    return self._send(int(fault), {"error": {"message": "injected"}})
                if fault == "429":
                    return self._send(429, {"error": "slow down"}, {"Retry-After": "0.2"})
                if fault == "garbage":
                    return self._send(200, {"unexpected": True})
                text = server.answer(body["messages"])
                reply = {
                    "object": "chat.completion",
                    "model": body["model"],
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
                    "usage": {"completion_tokens": len(text.split())},
                }
                return self._send(200, reply)

            def _send(self, code: int, obj: dict, headers: dict | None = None) -> None:
                data = json.dumps(obj).encode()
                try:
                    self.send_response(code)
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a stalled request)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "ChatServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
