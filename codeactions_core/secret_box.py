"""Encrypting project secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) from ``cryptography``.

SECRETS_KEY holds one or more keys, newest first: the first encrypts, every one
decrypts, so that a key can be rotated in (``codeactions secrets rotate``
re-encrypts every stored secret with the newest) and the old one dropped afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from codeactions_core.errors import ConfigurationError
from codeactions_core.settings import PREFIX

SETTING = f"{PREFIX}SECRETS_KEY"
NOT_CONFIGURED = (
    f"project secrets are not configured on this server: set {SETTING} "
    "(a Fernet key; `codeactions secrets new-key` prints one)"
)


class UndecryptableSecret(Exception):
    """A stored secret none of the configured keys can decrypt."""


def new_key() -> str:
    """A fresh random Fernet key, as SECRETS_KEY takes it."""
    return Fernet.generate_key().decode("ascii")


class SecretBox:
    """Encrypts with the newest key, decrypts with any of them."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ConfigurationError(NOT_CONFIGURED)
        try:
            self._fernet = MultiFernet([Fernet(key.encode("ascii")) for key in keys])
        except (ValueError, UnicodeEncodeError) as exc:
            raise ConfigurationError(f"{SETTING}: {exc}") from None

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            raise UndecryptableSecret(f"no key in {SETTING} decrypts it") from exc

    def rotate(self, token: str) -> str:
        """``token`` encrypted with the newest key (unchanged plaintext)."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError) as exc:
            raise UndecryptableSecret(f"no key in {SETTING} decrypts it") from exc
