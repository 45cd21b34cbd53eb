"""A small HTTP client of the codeactions API (stdlib only), for ``codeactions client``."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TIMEOUT = 120.0


class ClientError(Exception):
    """A request that failed; ``exit_code`` says how (see ``codeactions client --help``)."""

    def __init__(self, message: str, exit_code: int, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.status = status


EXIT_OK = 0
EXIT_FAILED = 1
"""The code (or flow) ran and failed, or timed out."""
EXIT_USAGE = 2
"""Bad arguments, or no/invalid project folder or config."""
EXIT_REFUSED = 3
"""The server refused the request (400, 404, 409, ...)."""
EXIT_AUTH = 4
"""No or wrong credentials (401, 403)."""
EXIT_UNREACHABLE = 5
"""The server could not be reached, or answered 5xx."""


def exit_code_of(status: int) -> int:
    if status in (401, 403):
        return EXIT_AUTH
    if status >= 500:
        return EXIT_UNREACHABLE
    return EXIT_REFUSED


@dataclass
class Api:
    url: str
    token: str = ""
    timeout: float = TIMEOUT

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        data: bytes | None = None,
        accept: tuple[int, ...] = (),
    ) -> tuple[int, Any]:
        """Send one request; the status and the decoded JSON (or text) answer.

        A status outside 2xx (and ``accept``) raises :class:`ClientError` with the server's message.
        """
        query = urllib.parse.urlencode({k: v for k, v in (params or {}).items() if v is not None})
        target = self.url.rstrip("/") + path + (f"?{query}" if query else "")
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(target, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, decode(response.read())
        except urllib.error.HTTPError as exc:
            answer = decode(exc.read())
            if exc.code in accept:
                return exc.code, answer
            message = answer.get("message") if isinstance(answer, dict) else None
            raise ClientError(
                f"{method} {path}: {exc.code} {message or answer or exc.reason}",
                exit_code_of(exc.code),
                exc.code,
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ClientError(f"cannot reach {self.url}: {reason}", EXIT_UNREACHABLE) from None

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)[1]

    def codes(self, project: str) -> list[dict[str, Any]]:
        return self.get("/code", project_uuid=project)

    def code_named(self, project: str, name: str) -> dict[str, Any]:
        """The project's code called ``name`` (the most recently updated if several)."""
        matches = [code for code in self.codes(project) if code["name"] == name]
        if not matches:
            raise ClientError(f"project {project} has no code named {name!r}", EXIT_REFUSED, 404)
        return max(matches, key=lambda code: code.get("updated_at") or "")

    def flows(self, project: str) -> list[dict[str, Any]]:
        return self.get("/flows", project_uuid=project)

    def flow_named(self, project: str, name: str) -> dict[str, Any] | None:
        matches = [flow for flow in self.flows(project) if flow["name"] == name]
        return max(matches, key=lambda flow: flow.get("updated_at") or "") if matches else None

    def logs_of(self, run_id: str) -> list[dict[str, Any]]:
        """Every log line of a run, oldest first."""
        lines: list[dict[str, Any]] = []
        page = 1
        while True:
            answer = self.get("/codelog", run_id=run_id, page=page)
            lines.extend(answer["data"])
            if page >= int(answer.get("last_page") or 1):
                break
            page += 1
        return sorted(lines, key=lambda line: line.get("created_at") or "")


def decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")
