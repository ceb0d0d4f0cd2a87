"""A real HTTP server speaking OpenAI's chat-completions protocol, for tests.

It answers ``POST /v1/chat/completions`` with ``answer(messages)``; a script of faults can be
queued: ``"500"`` (server error), ``"429"`` (rate limit with ``Retry-After``), ``"400"``,
``"stall"`` (sleeps longer than the client's timeout), ``"garbage"`` (200 with a body that is
not a chat completion), ``"401"`` (credentials refused), ``"429date"`` (``Retry-After`` as an
HTTP date ``retry_s`` ahead), ``"truncate"`` (200 with ``Content-Length: 400``, then 6 bytes
and a closed connection), ``"drip"`` (one byte of the answer every ``stall_s``). Every
request's Authorization header, body and arrival time are recorded.
"""

import email.utils
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ChatServer:
    def __init__(
        self,
        answer: Callable[[list[dict]], str],
        stall_s: float = 2.0,
        retry_s: float = 3.0,
        whole_request: bool = False,
    ):
        self.answer = answer  # of the messages, or of the whole request body (whole_request)
        self.whole_request = whole_request
        self.stall_s = stall_s
        self.retry_s = retry_s
        self.drips_completed = 0  # drip answers that reached their last byte (a client waited)
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
                        {
                            "auth": self.headers.get("Authorization"),
                            "body": body,
                            "fault": fault,
                            "at": time.monotonic(),
                            "path": self.path,  # an absolute URL when it came through a proxy
                        }
                    )
                if fault == "stall":
                    time.sleep(server.stall_s)
                    return self._send(200, {"choices": []})
                if fault == "truncate":
                    self.send_response(200)
                    self.send_header("Content-Length", "400")
                    self.end_headers()
                    self.wfile.write(b'{"choi')
                    self.wfile.flush()
                    self.close_connection = True
                    return None
                if fault == "429date":
                    when = email.utils.formatdate(time.time() + server.retry_s, usegmt=True)
                    return self._send(429, {"error": "slow down"}, {"Retry-After": when})
                if fault in ("500", "400", "401"):
                    return self._send(int(fault), {"error": {"message": "injected"}})
                if fault == "429":
                    return self._send(429, {"error": "slow down"}, {"Retry-After": "0.2"})
                if fault == "garbage":
                    return self._send(200, {"unexpected": True})
                text = server.answer(body if server.whole_request else body["messages"])
                reply = {
                    "object": "chat.completion",
                    "model": body["model"],
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
                    "usage": {"completion_tokens": len(text.split())},
                }
                if fault == "drip":
                    return self._send(200, reply, drip_s=server.stall_s)
                return self._send(200, reply)

            def _send(
                self, code: int, obj: dict, headers: dict | None = None, drip_s: float = 0.0
            ) -> None:
                data = json.dumps(obj).encode()
                try:
                    self.send_response(code)
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if drip_s:
                        for i in range(len(data)):
                            if i == len(data) - 1:  # counted before a client can have it all
                                server.drips_completed += 1
                            self.wfile.write(data[i : i + 1])
                            self.wfile.flush()
                            time.sleep(drip_s)
                    else:
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
