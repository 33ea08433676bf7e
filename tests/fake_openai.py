"""A scripted OpenAI-compatible HTTP server on 127.0.0.1, so the LLM proposer is tested over real HTTP.

Each POST to ``/v1/chat/completions`` takes the next behaviour from a queue (``default`` when the
queue is empty): a reply with or without usage, an HTTP error, a reply slower than the client's
timeout, a connection dropped mid-response, or a body that is not JSON. Requests are recorded.
``GET /v1/models`` lists ``models`` when it is set (404 otherwise, like a server without the route);
those requests are recorded apart, in ``gets``, so counts of completion requests stay as they were.
``max_active`` is the most completion requests that were being answered at one time.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Behaviour:
    """What the server does with one request."""

    status: int = 200
    content: str | None = ""
    usage: tuple[int, int] | None = (100, 50)
    delay_s: float = 0.0
    drop: bool = False
    body: bytes | None = None  # sent verbatim instead of a JSON completion
    headers: dict[str, str] = field(default_factory=dict)
    error: str = "scripted failure"
    finish_reason: str = "stop"


def good(content: str, usage: tuple[int, int] | None = (100, 50), finish_reason: str = "stop") -> Behaviour:
    return Behaviour(content=content, usage=usage, finish_reason=finish_reason)


def error(status: int, message: str = "scripted failure", headers: dict[str, str] | None = None) -> Behaviour:
    return Behaviour(status=status, error=message, headers=headers or {})


def slow(delay_s: float, content: str = "") -> Behaviour:
    return Behaviour(content=content, delay_s=delay_s)


def dropped() -> Behaviour:
    return Behaviour(drop=True)


def garbage() -> Behaviour:
    return Behaviour(body=b"<html>this is not json</html>")


class FakeOpenAI:
    """Start with ``with FakeOpenAI() as fake:``; point clients at ``fake.base_url``."""

    def __init__(self) -> None:
        self.queue: deque[Behaviour] = deque()
        self.default: Behaviour = error(500, "no scripted behaviour left")
        self.requests: list[dict[str, Any]] = []
        self.models: list[str] | None = None
        self.models_status: int = 200
        self.gets: list[dict[str, Any]] = []
        self.active = 0  # completion requests being answered right now
        self.max_active = 0  # the most that were ever answered at once: concurrent clients overlap
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler_class())
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def script(self, *behaviours: Behaviour) -> FakeOpenAI:
        self.queue.extend(behaviours)
        return self

    def next_behaviour(self) -> Behaviour:
        with self.lock:
            return self.queue.popleft() if self.queue else self.default

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                fake.gets.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}})
                if self.path.rstrip("/") != "/v1/models" or fake.models is None:
                    self.send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                elif fake.models_status != 200:
                    self.send_json(fake.models_status, {"error": {"message": "scripted failure", "type": "scripted",
                                                                  "code": fake.models_status}})
                else:
                    self.send_json(200, {"object": "list", "data": [
                        {"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in fake.models]})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    payload = json.loads(raw or b"{}")
                except ValueError:
                    payload = {"unparsable": raw.decode("utf-8", "replace")}
                headers = {k.lower(): v for k, v in self.headers.items()}
                fake.requests.append({"path": self.path, "headers": headers, "json": payload})
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self.send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                    return
                b = fake.next_behaviour()
                with fake.lock:
                    fake.active += 1
                    fake.max_active = max(fake.max_active, fake.active)
                try:
                    if b.delay_s and fake.stopping.wait(b.delay_s):
                        return
                    self.respond(b, payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with fake.lock:
                        fake.active -= 1

            def respond(self, b: Behaviour, payload: dict[str, Any]) -> None:
                if b.drop:
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                     b"Content-Length: 4096\r\n\r\n{\"id\": \"chatcmpl-")
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if b.body is not None:
                    self.send_raw(b.status, b.body, "text/html", b.headers)
                    return
                if b.status != 200:
                    self.send_json(b.status, {"error": {"message": b.error, "type": "scripted", "code": b.status}},
                                   b.headers)
                    return
                completion: dict[str, Any] = {
                    "id": "chatcmpl-fake", "object": "chat.completion", "created": 0,
                    "model": payload.get("model", "fake-model"),
                    "choices": [{"index": 0, "finish_reason": b.finish_reason,
                                 "message": {"role": "assistant", "content": b.content}}],
                }
                if b.usage is not None:
                    completion["usage"] = {"prompt_tokens": b.usage[0], "completion_tokens": b.usage[1],
                                           "total_tokens": sum(b.usage)}
                self.send_json(200, completion, b.headers)

            def send_json(self, status: int, obj: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                self.send_raw(status, json.dumps(obj).encode(), "application/json", headers or {})

            def send_raw(self, status: int, body: bytes, ctype: str, headers: dict[str, str]) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        return Handler


def closed_port_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
