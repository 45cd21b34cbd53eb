"""The asyncio front of ``codeactions serve``: connections are held by an event loop (uvicorn),
not by threads, so slow or idle clients cost a socket, never a thread.

- ``HeadDeadlineProtocol``: a client has HEADER_TIMEOUT seconds to send a request's line and
  headers (on a new connection, and again for each next request on a kept-alive one), or it is
  disconnected;
- ``Front``: the request's body is read on the event loop within BODY_TIMEOUT (else 408), then
  the Falcon WSGI app runs in a thread of a pool with the body already in hand.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from a2wsgi.wsgi import build_environ
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from codeactions_core.drain import SHUTTING_DOWN

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

BUFFERED_BODY_LIMIT = 16 * 1024 * 1024
"""Bodies are read whole before the app runs; a larger one (the app accepts at most 10 MiB)
is refused with 413."""


class HeadDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol with a deadline for the request line and headers, and a
    cap on open connections: a request arriving while more are open is answered 503 at once
    (in the API's ``{"message": ...}`` shape)."""

    header_timeout: float = 10.0
    max_connections: int | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_deadline: asyncio.TimerHandle | None = None
        self._arm_head_deadline()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_head_deadline()

    def on_headers_complete(self) -> None:
        self._cancel_head_deadline()
        if self.max_connections is None or len(self.connections) <= self.max_connections:
            super().on_headers_complete()
            return
        app, self.app = self.app, refuse_over_cap(self.max_connections)
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_deadline()
        super().connection_lost(exc)

    def _arm_head_deadline(self) -> None:
        if getattr(self, "_head_deadline", None) is None:
            self._head_deadline = self.loop.call_later(self.header_timeout, self._head_too_slow)

    def _cancel_head_deadline(self) -> None:
        if getattr(self, "_head_deadline", None) is not None:
            self._head_deadline.cancel()  # type: ignore[union-attr]
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def head_deadline_protocol(
    header_timeout: float, max_connections: int | None = None
) -> type[HeadDeadlineProtocol]:
    """The protocol class with these limits (uvicorn instantiates it per connection)."""
    limits = {"header_timeout": header_timeout, "max_connections": max_connections}
    return type("HeadDeadline", (HeadDeadlineProtocol,), limits)


def refuse_over_cap(max_connections: int) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
        log.warning("refused a request: more than %d connections open", max_connections)
        await respond(
            send,
            503,
            f"this server has more than {max_connections} connections open "
            "(MAX_CONNECTIONS); try again later",
        )

    return refuse


class BodyTooSlow(Exception):
    pass


class BodyTooLarge(Exception):
    pass


class Front:
    """ASGI app: reads the whole body on the event loop within ``body_timeout``, then runs
    ``wsgi_app`` once in a thread of its pool and sends what it answered.

    One hand-off to a thread and one back per request (a2wsgi's adapter takes a cross-thread
    round trip per message, which cost about a third more server CPU per run here); the
    bodies are bounded (BUFFERED_BODY_LIMIT in, the run caps out), so buffering is cheap."""

    def __init__(self, wsgi_app: Callable[..., Any], *, threads: int, body_timeout: float) -> None:
        self._app = wsgi_app
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="api")
        self._body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # no websockets
        body = b""
        if has_body(scope):
            try:
                body = await self._read_body(receive)
            except BodyTooSlow:
                await respond(
                    send, 408, f"request body not received within {self._body_timeout:g} s"
                )
                return
            except BodyTooLarge:
                await respond(
                    send, 413, f"request body must be smaller than {BUFFERED_BODY_LIMIT} bytes"
                )
                return
        environ = build_environ(scope, io.BytesIO(body))  # type: ignore[arg-type]
        environ["wsgi.input_terminated"] = True  # the whole body is in hand, chunked or not
        loop = asyncio.get_running_loop()
        try:
            status, headers, chunks = await loop.run_in_executor(self._pool, self._call, environ)
        except asyncio.CancelledError:  # the drain's deadline passed with this request open
            await respond(send, 503, SHUTTING_DOWN)
            return
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"".join(chunks)})

    def _call(self, environ: dict) -> tuple[int, list[tuple[bytes, bytes]], list[bytes]]:
        """Run the WSGI app in this (pool) thread; its status, headers and body."""
        answer: dict[str, Any] = {}
        chunks: list[bytes] = []

        def start_response(status: str, headers: list, exc_info: Any = None) -> Callable:
            if exc_info is not None and answer:
                raise exc_info[1].with_traceback(exc_info[2])
            answer["status"], answer["headers"] = status, headers
            return chunks.append

        try:
            iterable = self._app(environ, start_response)
            try:
                chunks.extend(chunk for chunk in iterable if chunk)
            finally:
                getattr(iterable, "close", lambda: None)()
        except Exception:
            log.exception("the API failed outside its error handlers")
            body = json.dumps({"message": "internal server error"}).encode()
            return 500, [(b"content-type", b"application/json")], [body]
        headers = [
            (name.lower().encode("latin1"), value.encode("latin1"))
            for name, value in answer["headers"]
        ]
        return int(answer["status"].split(" ", 1)[0]), headers, chunks

    async def _read_body(self, receive: Receive) -> bytes:
        """The whole body, before the deadline and up to BUFFERED_BODY_LIMIT bytes."""
        parts: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self._body_timeout):
                while True:
                    message = await receive()
                    if message["type"] != "http.request":
                        break  # the client went away: what came is what there is
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > BUFFERED_BODY_LIMIT:
                        raise BodyTooLarge
                    parts.append(chunk)
                    if not message.get("more_body"):
                        break
        except TimeoutError:
            raise BodyTooSlow from None
        return b"".join(parts)


async def lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def has_body(scope: Scope) -> bool:
    """Whether the request announces a body (a Content-Length above 0, or chunked)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value.strip() not in (b"0", b"")
        if name == b"transfer-encoding":
            return True
    return False


async def respond(send: Send, status: int, message: str) -> None:
    """A ``{"message": ...}`` answer that closes the connection."""
    body = json.dumps({"message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
