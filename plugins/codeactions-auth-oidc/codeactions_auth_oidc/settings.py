"""The settings of codeactions-auth-oidc, declared through the ``codeactions_settings`` hook."""

from __future__ import annotations

from dataclasses import dataclass

from codeactions_core.errors import ConfigurationError
from codeactions_core.settings import (
    PREFIX,
    PluginSettings,
    Settings,
    at_least,
    parse_bool,
    parse_float,
    setting,
)


@dataclass(frozen=True)
class OidcSettings(PluginSettings):
    """Settings of codeactions-auth-oidc (bearer tokens checked with an OIDC provider):"""

    oidc_auth_enabled: bool = setting(
        False, "Check bearer tokens with the OIDC provider.", parse=parse_bool
    )
    oidc_host: str = setting("", "OIDC provider base URL, e.g. `https://sso.example.com`.")
    oidc_realm: str = setting("", "OIDC realm.")
    oidc_cache_seconds: float = setting(
        60.0, "Seconds a successful token lookup is remembered.", parse=at_least(0, parse_float)
    )
    oidc_failure_cache_seconds: float = setting(
        3.0, "Seconds a refused token is remembered (at most 10).", parse=at_least(0, parse_float)
    )
    oidc_timeout_seconds: float = setting(
        5.0,
        "Seconds to wait for the identity provider before answering 503.",
        parse=at_least(0.1, parse_float),
    )

    def validate(self, settings: Settings) -> None:
        if self.oidc_failure_cache_seconds > 10:
            raise ConfigurationError(f"{PREFIX}OIDC_FAILURE_CACHE_SECONDS: must be at most 10")
        if self.oidc_auth_enabled and not (self.oidc_host and self.oidc_realm):
            raise ConfigurationError(
                f"{PREFIX}OIDC_HOST and {PREFIX}OIDC_REALM: required when OIDC_AUTH_ENABLED is true"
            )
