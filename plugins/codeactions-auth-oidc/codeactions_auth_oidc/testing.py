"""A real OIDC userinfo endpoint on loopback, for tests (this plugin's and the core's)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REALM = "test-realm"


class UserinfoServer:
    """Answers ``/realms/<realm>/protocol/openid-connect/userinfo`` from ``users``
    (token -> userinfo document); unknown tokens get 401. Counts the calls."""

    def __init__(self, users: Mapping[str, dict[str, Any]]) -> None:
        self.users = dict(users)
        self.calls = 0
        self.delay = 0.0
        self.status_override: int | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def settings(self, **more: Any) -> dict[str, Any]:
        """Field values of the OIDC plugin's settings pointing it here
        (``Settings.of(OidcSettings, **values)``)."""
        return {"oidc_auth_enabled": True, "oidc_host": self.host, "oidc_realm": REALM, **more}

    def start(self) -> UserinfoServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.calls += 1
                if outer.delay:
                    time.sleep(outer.delay)  # simulating a slow provider, not synchronisation
                token = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
                expected = f"/realms/{REALM}/protocol/openid-connect/userinfo"
                known = self.path == expected and token in outer.users
                status = outer.status_override or (200 if known else 401)
                body = json.dumps(outer.users.get(token, {"error": "invalid_token"})).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@contextmanager
def userinfo_server(users: Mapping[str, dict[str, Any]]) -> Iterator[UserinfoServer]:
    server = UserinfoServer(users).start()
    try:
        yield server
    finally:
        server.stop()
