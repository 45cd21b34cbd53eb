"""Who is calling: identities and the auth-provider contract."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


class IdentityKind(enum.StrEnum):
    ANONYMOUS = "anonymous"
    SERVICE = "service"
    USER = "user"


@dataclass(frozen=True)
class Identity:
    kind: IdentityKind
    email: str = ""
    internal: bool = False
    """A user allowed everywhere (OIDC ``can_communicate_internally``)."""

    @property
    def is_service(self) -> bool:
        return self.kind is IdentityKind.SERVICE


ANONYMOUS = Identity(IdentityKind.ANONYMOUS)


@runtime_checkable
class AuthProvider(Protocol):
    """Turns a request's credentials into an identity."""

    name: str
    scheme: str
    """How a client presents these credentials, for error messages: ``Token <service token>``."""

    def authenticate(self, headers: Mapping[str, str]) -> Identity | None:
        """The caller's identity; ``None`` when the credentials are not this provider's.

        ``headers`` are the request's headers, names in lower case.

        Raise ``Unauthenticated`` for credentials that are this provider's but
        invalid, and ``Unavailable`` when the provider cannot be asked.
        """
