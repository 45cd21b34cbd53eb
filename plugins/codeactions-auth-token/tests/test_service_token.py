"""The service token: recognised in constant time, wrong ones refused, other schemes left alone."""

from __future__ import annotations

import pytest
from codeactions_auth_token import ServiceToken, codeactions_auth_providers

from codeactions_core.auth import IdentityKind
from codeactions_core.errors import Unauthenticated
from codeactions_core.plugins import collect, get_plugin_manager
from codeactions_core.settings import Settings

TOKEN = "s3cret-service-token"


@pytest.fixture
def provider() -> ServiceToken:
    return ServiceToken(TOKEN)


@pytest.mark.parametrize("header", [f"Token {TOKEN}", f"token {TOKEN}", f"Token  {TOKEN} "])
def test_the_token_identifies_the_service(provider, header):
    assert provider.authenticate({"authorization": header}).kind is IdentityKind.SERVICE


@pytest.mark.parametrize(
    "header", ["Token wrong", "Token ", f"Token {TOKEN}x", f"Token {TOKEN[:-1]}"]
)
def test_a_wrong_token_is_refused(provider, header):
    with pytest.raises(Unauthenticated, match="not valid"):
        provider.authenticate({"authorization": header})


@pytest.mark.parametrize(
    "headers", [{}, {"authorization": f"Bearer {TOKEN}"}, {"authorization": TOKEN}]
)
def test_other_credentials_are_not_this_providers(provider, headers):
    assert provider.authenticate(headers) is None


def test_the_token_never_shows_in_repr(provider):
    assert TOKEN not in repr(provider)


def test_provided_only_when_a_token_is_configured():
    assert codeactions_auth_providers(Settings()) == []
    assert len(codeactions_auth_providers(Settings(auth_token=TOKEN))) == 1


def test_loaded_through_the_plugin_manager():
    settings = Settings(auth_token=TOKEN)
    providers = collect(
        get_plugin_manager(settings).hook.codeactions_auth_providers(settings=settings)
    )
    assert [provider.name for provider in providers] == ["service-token"]
