"""Asking the OIDC provider who a bearer token belongs to (its userinfo endpoint)."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from codeactions_auth_oidc.cache import ExpiringCache
from codeactions_auth_oidc.settings import OidcSettings
from codeactions_core.auth import Identity, IdentityKind
from codeactions_core.errors import Unauthenticated, Unavailable
from codeactions_core.settings import Settings

REFUSED = "refused"


@dataclass(frozen=True)
class Userinfo:
    """What the provider says of a token's owner."""

    email: str
    internal: bool

    def identity(self) -> Identity:
        return Identity(IdentityKind.USER, email=self.email, internal=self.internal)


def userinfo_url(settings: Settings) -> str:
    oidc = settings.plugin(OidcSettings)
    return f"{oidc.oidc_host.rstrip('/')}/realms/{oidc.oidc_realm}/protocol/openid-connect/userinfo"


class OidcUserinfo:
    """``Authorization: Bearer <token>`` (or the bare token), checked with the provider.

    Successful lookups are remembered for ``OIDC_CACHE_SECONDS``, refusals for a
    few seconds, provider failures not at all (they answer 503).
    """

    name = "oidc"
    scheme = "Bearer <user token>"

    def __init__(self, settings: Settings) -> None:
        self._url = userinfo_url(settings)
        oidc = settings.plugin(OidcSettings)
        self._timeout = oidc.oidc_timeout_seconds
        self._good_for = oidc.oidc_cache_seconds
        self._refused_for = oidc.oidc_failure_cache_seconds
        self._cache: ExpiringCache[Userinfo | str] = ExpiringCache()

    def authenticate(self, headers: Mapping[str, str]) -> Identity | None:
        token = bearer_token(headers.get("authorization", ""))
        if token is None:
            return None
        key = hashlib.sha256(token.encode()).hexdigest()  # tokens are not kept in memory
        known = self._cache.get(key)
        if known is None:
            known = self._ask(token)
            self._cache.put(
                key, known, self._good_for if isinstance(known, Userinfo) else self._refused_for
            )
        if known == REFUSED:
            raise Unauthenticated("the bearer token was refused by the identity provider")
        return known.identity()

    def _ask(self, token: str) -> Userinfo | str:
        request = urllib.request.Request(
            self._url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as answer:
                document = json.loads(answer.read(1 << 20) or b"{}")
        except urllib.error.HTTPError as refused:
            if 400 <= refused.code < 500:
                return REFUSED
            raise Unavailable(
                f"the identity provider answered {refused.code}; try again later"
            ) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Unavailable(
                f"the identity provider did not answer within {self._timeout:g} s ({reason}); "
                "try again later"
            ) from None
        except ValueError:
            raise Unavailable("the identity provider sent an unreadable userinfo") from None
        return to_userinfo(document)


def to_userinfo(document: Any) -> Userinfo | str:
    if not isinstance(document, dict):
        return REFUSED
    email = document.get("email") if isinstance(document.get("email"), str) else ""
    return Userinfo(
        email=email.strip(), internal=document.get("can_communicate_internally") is True
    )


def bearer_token(header: str) -> str | None:
    """The token of ``Bearer <t>`` or of a bare ``<t>``; None for other schemes or nothing."""
    header = header.strip()
    if not header:
        return None
    scheme, _, rest = header.partition(" ")
    if scheme.lower() == "bearer":
        return rest.strip() or None
    return None if rest else header
