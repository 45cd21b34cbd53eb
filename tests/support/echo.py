"""A real HTTP server on loopback that records requests and answers with JSON.

Used by the tests and the benchmarks."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    """One request as the server saw it; header names in lower case."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int = 200
    body: Any = None
    """Sent as JSON; None: an echo of the request ``{"method", "path", "body"}``."""
    hold: threading.Event | None = None
    """When set, the answer waits for this event first (a slow dependency the test controls)."""
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    """Sent as it is instead of ``body`` (then ``headers`` names its Content-Type, if any)."""

    def payload(self, request: Recorded) -> tuple[dict[str, str], bytes]:
        """The headers and bytes to send for ``request``."""
        if self.content is not None:
            return self.headers, self.content
        body = self.body
        if body is None:
            text = request.body.decode("utf-8", "replace")
            body = {"method": request.method, "path": request.path, "body": text}
        return {"Content-Type": "application/json", **self.headers}, json.dumps(body).encode()


class QuietServer(ThreadingHTTPServer):
    """A client that went away (a killed worker, a timed-out step) is no error to print."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


@dataclass
class EchoServer:
    """Answers every request with ``answer(request)`` (default: an echo), keeping each request."""

    answer: Callable[[Recorded], Answer] = field(default=lambda request: Answer())
    requests: list[Recorded] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server = QuietServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def at(self, path: str = "/") -> str:
        """The URL of ``path`` on this server."""
        return self.url + path

    def start(self) -> EchoServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def received(self) -> list[Recorded]:
        with self._lock:
            return list(self.requests)

    def _record(self, request: Recorded) -> None:
        with self._lock:
            self.requests.append(request)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                headers = {name.lower(): value for name, value in self.headers.items()}
                request = Recorded(self.command, self.path, headers, self.rfile.read(length))
                outer._record(request)
                answer = outer.answer(request)
                if answer.hold is not None:
                    answer.hold.wait(60)
                headers, data = answer.payload(request)
                self.send_response(answer.status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@contextmanager
def echo_server(answer: Callable[[Recorded], Answer] | None = None) -> Iterator[EchoServer]:
    server = EchoServer(answer) if answer else EchoServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def main() -> None:
    """``python -m tests.support.echo``: serve until killed, printing the URL first."""
    server = EchoServer(answer=lambda request: Answer(body={"ok": True}))
    print(server.url, flush=True)
    server._server.serve_forever()


if __name__ == "__main__":
    main()
