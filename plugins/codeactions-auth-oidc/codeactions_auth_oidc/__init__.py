"""codeactions-auth-oidc: users identified by an OIDC provider (COMPAT.md "Auth").

With ``FLOWS_CODE_ACTIONS_OIDC_AUTH_ENABLED=true``, a bearer token is checked
with ``{OIDC_HOST}/realms/{OIDC_REALM}/protocol/openid-connect/userinfo``: the
user's ``email`` then needs a permission on the project a request touches, and
``can_communicate_internally: true`` passes everywhere.
"""

from __future__ import annotations

from codeactions_auth_oidc.settings import OidcSettings
from codeactions_auth_oidc.userinfo import OidcUserinfo
from codeactions_core import hookimpl
from codeactions_core.settings import Settings

__all__ = ["OidcSettings", "OidcUserinfo", "codeactions_auth_providers", "codeactions_settings"]


@hookimpl(trylast=True)
def codeactions_auth_providers(settings: Settings) -> list[OidcUserinfo]:
    return [OidcUserinfo(settings)] if settings.plugin(OidcSettings).oidc_auth_enabled else []


@hookimpl(trylast=True)
def codeactions_settings() -> list[type[OidcSettings]]:
    return [OidcSettings]
