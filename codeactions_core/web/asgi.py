"""The asyncio front of ``codeactions serve``: connections are held by an event loop (uvicorn),
not by threads, so slow or idle clients cost a socket, never a thread.

- ``HeadDeadlineProtocol``: a client has HEADER_TIMEOUT seconds to send a request's line and
  headers (on a new connection, and again for each next request on a kept-alive one), or it is
  disconnected;
- ``Front``: the request's body is read on the event loop within BODY_TIMEOUT (else 408), then
  the Falcon WSGI app runs in a thread of a pool (a2wsgi) with the body already in hand.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from a2wsgi import WSGIMiddleware
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

BUFFERED_BODY_LIMIT = 16 * 1024 * 1024
"""Bodies up to this size are read whole before the app runs; a larger one (refused by the app
anyway) is passed on as it arrives, each part still within the body deadline."""


class HeadDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol with a deadline for the request line and headers."""

    header_timeout: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_deadline: asyncio.TimerHandle | None = None
        self._arm_head_deadline()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_head_deadline()

    def on_headers_complete(self) -> None:
        self._cancel_head_deadline()
        super().on_headers_complete()

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


def head_deadline_protocol(header_timeout: float) -> type[HeadDeadlineProtocol]:
    """The protocol class with this header deadline (uvicorn instantiates it per connection)."""
    return type("HeadDeadline", (HeadDeadlineProtocol,), {"header_timeout": header_timeout})


class BodyTooSlow(Exception):
    pass


class Front:
    """ASGI app: reads the body within ``body_timeout``, then runs ``wsgi_app`` in a thread."""

    def __init__(
        self,
        wsgi_app: Callable[..., Any],
        *,
        threads: int,
        body_timeout: float,
        on_shutdown: Callable[[], None] = lambda: None,
    ) -> None:
        self._wsgi = WSGIMiddleware(wsgi_app, workers=threads)
        self._body_timeout = body_timeout
        self._on_shutdown = on_shutdown

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            await self._wsgi(scope, receive, send)
            return
        try:
            replay = await self._read_body(receive)
        except BodyTooSlow:
            await respond(send, 408, f"request body not received within {self._body_timeout:g} s")
            return
        await self._wsgi(scope, replay, send)

    async def _read_body(self, receive: Receive) -> Receive:
        """Read the body (up to BUFFERED_BODY_LIMIT) before the deadline; a ``receive`` that
        replays it, then goes on reading (a larger body) with what is left of the deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._body_timeout
        buffered: list[Message] = []
        size = 0

        async def within_deadline() -> Message:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise BodyTooSlow
            try:
                return await asyncio.wait_for(receive(), remaining)
            except TimeoutError:
                raise BodyTooSlow from None

        while True:
            message = await within_deadline()
            buffered.append(message)
            size += len(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body"):
                break
            if size > BUFFERED_BODY_LIMIT:
                break

        async def replay() -> Message:
            if buffered:
                return buffered.pop(0)
            try:
                return await within_deadline()
            except BodyTooSlow:
                return {"type": "http.disconnect"}

        return replay

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    self._on_shutdown()
                finally:
                    await send({"type": "lifespan.shutdown.complete"})
                return


async def respond(send: Send, status: int, message: str) -> None:
    """A ``{"message": ...}`` answer that closes the connection."""
    body = json.dumps({"message": message}).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ],
    })
    await send({"type": "http.response.body", "body": body})
