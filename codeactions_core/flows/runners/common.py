"""Helpers the built-in runners share: numbers that may arrive as text, safe URLs, HTTP.

HTTP from flow steps runs in the server's (or worker's) own process, with its network:
every connection, the first and each redirect's, resolves the host, checks every address
against the egress policy (the sandbox's ``egress`` mode: no loopback, private, link-local
or metadata, CGNAT, ULA, multicast... unless FLOW_EGRESS_ALLOW opens it) and connects to
an address it checked, so that no second DNS answer can slip in between (no rebinding).
The host name still goes in the Host header and TLS SNI. No proxy is used.
"""

from __future__ import annotations

import functools
import http.client
import ipaddress
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from typing import Any
from urllib.parse import urlsplit

from codeactions_core import __version__
from codeactions_core.egress import EgressPolicy
from codeactions_core.flows.placeholders import has_placeholder
from codeactions_core.flows.steps import StepFailed

MAX_RESPONSE_BYTES = 1024 * 1024
USER_AGENT = f"codeactions-flows/{__version__}"
CHUNK = 64 * 1024
REDIRECTS = (301, 302, 303, 307, 308)


def number_problems(
    config: Mapping[str, Any],
    name: str,
    *,
    minimum: float,
    maximum: float,
    exclusive_minimum: bool = False,
) -> list[str]:
    """Range problems of a numeric field given as text (the schema checks real numbers)."""
    value = config.get(name)
    if not isinstance(value, str) or has_placeholder(value):
        return []
    try:
        number = float(value)
    except ValueError:
        return [f"config.{name}: {value!r} is not a number"]
    low = number <= minimum if exclusive_minimum else number < minimum
    if low or number > maximum:
        bound = "greater than" if exclusive_minimum else "at least"
        return [f"config.{name}: {value!r} must be {bound} {minimum:g} and at most {maximum:g}"]
    return []


def as_number(value: Any, name: str) -> float | int:
    """A resolved numeric field as a number (ints stay ints); StepFailed when it is not one."""
    if isinstance(value, bool):
        raise StepFailed(f"config.{name}: expected a number, got {value!r}")
    if isinstance(value, int | float):
        return value
    try:
        number = float(str(value))
    except ValueError:
        raise StepFailed(f"config.{name}: expected a number, got {value!r}") from None
    return int(number) if number.is_integer() else number


def url_problems(url: Any, name: str) -> list[str]:
    """Problems of an http(s) URL field (one holding a placeholder is checked once resolved)."""
    if not isinstance(url, str) or has_placeholder(url):
        return []
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [f"config.{name}: {url!r} is not an http:// or https:// URL"]
    return []


def shown_url(url: str, *, path: bool = True) -> str:
    """The URL that logs and messages show: no credentials, no query (tokens), maybe no path."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path if path else ''}"


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    content: bytes
    content_type: str
    charset: str

    def text(self) -> str:
        return self.content.decode(self.charset, errors="replace")

    def json_or_text(self) -> Any:
        """The body parsed as JSON when the response says it is JSON (and it parses), else text."""
        if self.content_type == "application/json" or self.content_type.endswith("+json"):
            try:
                return json.loads(self.text())
            except ValueError:
                pass
        return self.text()

    def excerpt(self, limit: int = 200) -> str:
        text = " ".join(self.text().split())
        return text if len(text) <= limit else text[:limit] + "…"


class TransportError(Exception):
    """No response: the connection failed or timed out (worth retrying)."""


class TooLarge(StepFailed):
    """The response body passed the size cap."""


class EgressRefused(StepFailed):
    """The egress policy denies every address of the host (never retried)."""


Resolver = Callable[[str, int], list[str]]
"""``(host, port)`` → the addresses to connect to, in order (``socket.getaddrinfo``'s)."""


def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses as the system resolves them (an address resolves to itself)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Egress:
    """Where flow steps may connect: ``policy`` checked on the addresses ``resolve`` gives."""

    policy: EgressPolicy = field(default_factory=EgressPolicy)
    resolve: Resolver = system_resolver

    def connect(
        self,
        address: tuple[str, int],
        timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
        source_address: Any = None,
    ) -> socket.socket:
        """A connection to a checked address of ``address``'s host.

        EgressRefused when none of its addresses may be used."""
        host, port = address
        candidates = self.resolve(host, port)
        allowed = [ip for ip in candidates if self.policy.allows(bare(ip), port)]
        if not allowed:
            why = (
                self.policy.reason(bare(candidates[0]), port) if candidates else "it has no address"
            )
            raise EgressRefused(
                f"connecting to {host}:{port} was refused by the flow egress policy: {why} "
                "(FLOWS_CODE_ACTIONS_FLOW_EGRESS_ALLOW can open it)"
            )
        error: OSError | None = None
        for ip in allowed:
            try:
                return socket.create_connection((ip, port), timeout, source_address)
            except OSError as exc:
                error = exc
        assert error is not None
        raise error


def bare(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address without its IPv6 zone (``fe80::1%eth0``)."""
    return ipaddress.ip_address(ip.split("%", 1)[0])


def pinned(
    base: type[http.client.HTTPConnection], egress: Egress
) -> type[http.client.HTTPConnection]:
    """``base`` connecting through ``egress`` (HTTPS keeps the host name for SNI and checks)."""

    class Pinned(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._create_connection = egress.connect

    return Pinned


class _EgressHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, egress: Egress) -> None:
        super().__init__()
        self._connection = pinned(http.client.HTTPConnection, egress)

    def http_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(self._connection, req)


class _EgressHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, egress: Egress) -> None:
        super().__init__()
        self._connection = pinned(http.client.HTTPSConnection, egress)

    def https_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(self._connection, req, context=self._context)


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follows redirects to http(s) only (the opener has no handler for other schemes anyway)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        if urlsplit(newurl).scheme not in ("http", "https"):
            raise StepFailed(f"HTTP {code}: a redirect to a non-HTTP URL was refused")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def opener(egress: Egress) -> urllib.request.OpenerDirector:
    """An opener for http and https only (no file:, ftp: or data: URLs, even by redirect),
    every connection through ``egress``, no proxy.

    Build it once per runner: its handlers keep no state between requests, and building
    the HTTPS handler's TLS context costs more than a request on loopback."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        _EgressHTTPHandler(egress),
        _EgressHTTPSHandler(egress),
        _RedirectHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


def send(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    data: bytes | None,
    timeout: float,
    max_bytes: int = MAX_RESPONSE_BYTES,
    through: urllib.request.OpenerDirector | None = None,
) -> Response:
    """One HTTP request through ``through`` (default: the built-in egress policy); any status
    is a Response, no response at all is TransportError, a denied address EgressRefused.

    ``timeout`` bounds connecting, each read, and reading the whole body.
    """
    if urlsplit(url).scheme not in ("http", "https"):
        raise StepFailed(f"{url!r} is not an http:// or https:// URL")
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("User-Agent", USER_AGENT)
    for name, value in headers.items():
        request.add_header(name, value)
    deadline = time.monotonic() + timeout
    try:
        try:
            raw = (through or _default_opener()).open(request, timeout=timeout)
        except urllib.error.HTTPError as error:  # any status but 2xx: still a response
            if error.code in REDIRECTS:
                raise StepFailed(
                    f"HTTP {error.code}: the redirect was not followed: {error.reason}"
                ) from None
            raw = error
        with raw:
            return _response(raw.status, raw.headers, raw, deadline, timeout, max_bytes)
    except StepFailed:
        raise
    except (TimeoutError, urllib.error.URLError, http.client.HTTPException, OSError) as error:
        raise TransportError(_transport_message(error, timeout)) from error
    except ValueError as error:  # e.g. a malformed URL
        raise StepFailed(f"invalid request: {error}") from None


@functools.cache
def _default_opener() -> urllib.request.OpenerDirector:
    """An opener with the built-in policy only (nothing allowed beyond it)."""
    return opener(Egress())


def _response(
    status: int, message: Message, body: Any, deadline: float, timeout: float, max_bytes: int
) -> Response:
    length = message.get("Content-Length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise TooLarge(f"the response body is larger than {max_bytes} bytes (HTTP {status})")
    chunks, size = [], 0
    while True:
        chunk = body.read(min(CHUNK, max_bytes + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge(f"the response body is larger than {max_bytes} bytes (HTTP {status})")
        if time.monotonic() > deadline:
            raise TimeoutError(f"reading the response took more than {timeout:g} s")
    headers: dict[str, str] = {}
    for name, value in message.items():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return Response(
        status=status,
        headers=headers,
        content=b"".join(chunks),
        content_type=message.get_content_type(),
        charset=message.get_content_charset() or "utf-8",
    )


def _transport_message(error: BaseException, timeout: float) -> str:
    reason = error.reason if isinstance(error, urllib.error.URLError) else error
    if isinstance(reason, TimeoutError):
        return f"timed out after {timeout:g} s"
    text = str(reason) or type(reason).__name__
    return f"connection failed: {text}"
