"""codeactions-auth-token: the service token of COMPAT.md.

``Authorization: Token <FLOWS_CODE_ACTIONS_AUTH_TOKEN>`` identifies the service
itself: it may call ``/run`` and every management route. Compared in constant
time; never logged.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from codeactions_core import hookimpl
from codeactions_core.auth import Identity, IdentityKind
from codeactions_core.errors import Unauthenticated
from codeactions_core.settings import Settings

SERVICE = Identity(IdentityKind.SERVICE)


class ServiceToken:
    name = "service-token"
    scheme = "Token <service token>"

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    def authenticate(self, headers: Mapping[str, str]) -> Identity | None:
        scheme, _, presented = headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "token":
            return None
        if hmac.compare_digest(presented.strip().encode(), self._token):
            return SERVICE
        raise Unauthenticated("the service token is not valid")

    def __repr__(self) -> str:
        return "ServiceToken(<hidden>)"


@hookimpl(trylast=True)
def codeactions_auth_providers(settings: Settings) -> list[ServiceToken]:
    return [ServiceToken(settings.auth_token)] if settings.auth_token else []
