"""Callbacks of async runs: checking a ``callback_url``, signing and delivering the run.

A callback is a POST of the finished run's CodeRun JSON (compact, keys sorted)
with ``Content-Type: application/json`` and these headers:

- ``X-Codeactions-Signature: sha256=<hex>``: HMAC-SHA256 of the exact body bytes
  with the project's signing key (``POST /projects/{uuid}/signing-key``);
- ``X-Codeactions-Run-Id``: the run's id;
- ``X-Codeactions-Delivery``: the attempt number (1, 2, ...): the body is the same
  on every attempt, so a receiver can drop repeats by run id.

Any 2xx answer ends the delivery; anything else (another status, no answer) is
retried after a pause that doubles from CALLBACK_BACKOFF_SECONDS, CALLBACK_ATTEMPTS
times in all. URLs obey the flow egress policy (FLOW_EGRESS_ALLOW/DENY): checked when
the run is asked for, and again on every connection (after DNS resolution), so that
code cannot make the server reach an internal address.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from codeactions_core.errors import InvalidInput
from codeactions_core.flows.runners.common import (
    Egress,
    EgressRefused,
    TransportError,
    bare,
    opener,
    send,
    shown_url,
)
from codeactions_core.flows.steps import StepFailed
from codeactions_core.model import CodeRun

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Codeactions-Signature"
MAX_URL_LENGTH = 2048
MAX_PAUSE = 60.0
KEY_BYTES = 32


def new_signing_key() -> str:
    """A fresh random key (256 bits, URL-safe text)."""
    return secrets.token_urlsafe(KEY_BYTES)


def signature(key: str, body: bytes) -> str:
    """The ``X-Codeactions-Signature`` value of ``body``: ``sha256=<hex HMAC>``."""
    return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def verify(key: str, body: bytes, header: str) -> bool:
    """Whether ``header`` is the signature of ``body`` (constant-time comparison)."""
    return hmac.compare_digest(signature(key, body), header.strip())


def callback_body(run: CodeRun) -> bytes:
    return json.dumps(run.to_json(), separators=(",", ":"), sort_keys=True).encode()


def check_callback_url(url: str, egress: Egress) -> str:
    """``url`` when it is an http(s) URL the egress policy lets the server reach;
    InvalidInput naming the problem otherwise."""
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(f"callback_url is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise InvalidInput("callback_url must not contain whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise InvalidInput(f"callback_url is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidInput(f"callback_url must be an http:// or https:// URL, got {url!r}")
    if not parts.hostname:
        raise InvalidInput(f"callback_url has no host: {url!r}")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("callback_url must not carry credentials (user:password@)")
    try:
        addresses = egress.resolve(parts.hostname, port)
    except (OSError, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise InvalidInput(
            f"callback_url host {parts.hostname!r} does not resolve: {reason}"
        ) from None
    if not any(egress.policy.allows(bare(ip), port) for ip in addresses):
        why = egress.policy.reason(bare(addresses[0]), port) if addresses else "it has no address"
        raise InvalidInput(
            f"callback_url {parts.hostname}:{port} is refused by the egress policy: {why} "
            "(FLOWS_CODE_ACTIONS_FLOW_EGRESS_ALLOW can open it)"
        )
    return url


@dataclass(frozen=True)
class Delivery:
    delivered: bool
    attempts: int
    error: str = ""


class CallbackSender:
    """Delivers finished runs to their callback URLs, through the egress policy."""

    def __init__(
        self,
        egress: Egress,
        *,
        attempts: int = 5,
        backoff_seconds: float = 1.0,
        timeout_seconds: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._opener = opener(egress)
        self._attempts = attempts
        self._backoff = backoff_seconds
        self._timeout = timeout_seconds
        self._sleep = sleep

    def deliver(self, url: str, run: CodeRun, key: str) -> Delivery:
        """POST ``run`` to ``url`` until a 2xx answer or the attempts run out."""
        body = callback_body(run)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(key, body),
            "X-Codeactions-Run-Id": run.id,
        }
        error = ""
        for attempt in range(1, self._attempts + 1):
            if attempt > 1:
                self._sleep(min(MAX_PAUSE, self._backoff * 2 ** (attempt - 2)))
            try:
                answer = send(
                    "POST",
                    url,
                    headers={**headers, "X-Codeactions-Delivery": str(attempt)},
                    data=body,
                    timeout=self._timeout,
                    max_bytes=64 * 1024,
                    through=self._opener,
                )
            except EgressRefused as exc:  # policy: never retried
                return Delivery(False, attempt, str(exc))
            except (TransportError, StepFailed) as exc:
                error = f"attempt {attempt}: {exc}"
            else:
                if 200 <= answer.status < 300:
                    return Delivery(True, attempt)
                error = f"attempt {attempt}: HTTP {answer.status} {answer.excerpt(100)}".strip()
            log.info("callback of run %s to %s failed (%s)", run.id, shown_url(url), error)
        return Delivery(False, self._attempts, error)
