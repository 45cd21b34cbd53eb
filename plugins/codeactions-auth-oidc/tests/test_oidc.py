"""OIDC bearer tokens against a real userinfo server on loopback."""

from __future__ import annotations

import time

import pytest
from codeactions_auth_oidc import OidcUserinfo
from codeactions_auth_oidc.settings import OidcSettings
from codeactions_auth_oidc.testing import userinfo_server
from codeactions_auth_oidc.userinfo import bearer_token

from codeactions_core.auth import IdentityKind
from codeactions_core.errors import ConfigurationError, Unauthenticated, Unavailable
from codeactions_core.plugins import load_settings
from codeactions_core.settings import Settings
from codeactions_core.testing.api import api_client
from codeactions_core.testing.server import free_port

USERS = {
    "ana-token": {"email": "ana@example.org", "name": "Ana"},
    "bot-token": {"email": "bot@example.org", "can_communicate_internally": True},
}


@pytest.fixture
def provider_server():
    with userinfo_server(USERS) as server:
        yield server


def provider(server, **settings) -> OidcUserinfo:
    return OidcUserinfo(Settings.of(OidcSettings, **server.settings(**settings)))


@pytest.mark.parametrize(
    "header", ["Bearer ana-token", "bearer ana-token", "ana-token", "  Bearer   ana-token "]
)
def test_a_token_names_its_user(provider_server, header):
    identity = provider(provider_server).authenticate({"authorization": header})
    assert (identity.kind, identity.email, identity.internal) == (
        IdentityKind.USER,
        "ana@example.org",
        False,
    )


def test_internal_users(provider_server):
    assert (
        provider(provider_server).authenticate({"authorization": "Bearer bot-token"}).internal
        is True
    )


@pytest.mark.parametrize("header", ["", "Token abc", "Basic dXNlcjpwYXNz"])
def test_other_credentials_are_not_this_providers(provider_server, header):
    assert provider(provider_server).authenticate({"authorization": header}) is None
    assert provider_server.calls == 0


def test_a_refused_token_is_401_and_remembered_briefly(provider_server):
    checker = provider(provider_server, oidc_failure_cache_seconds=0.3)
    for _ in range(3):
        with pytest.raises(Unauthenticated, match="refused"):
            checker.authenticate({"authorization": "Bearer nope"})
    assert provider_server.calls == 1
    deadline = time.monotonic() + 5
    while provider_server.calls == 1 and time.monotonic() < deadline:
        with pytest.raises(Unauthenticated):
            checker.authenticate({"authorization": "Bearer nope"})
        time.sleep(0.05)  # waiting for the refusal to expire
    assert provider_server.calls == 2


def test_a_good_token_is_remembered_then_asked_again(provider_server):
    checker = provider(provider_server, oidc_cache_seconds=0.3)
    for _ in range(5):
        checker.authenticate({"authorization": "Bearer ana-token"})
    assert provider_server.calls == 1
    deadline = time.monotonic() + 5
    while provider_server.calls == 1 and time.monotonic() < deadline:
        checker.authenticate({"authorization": "Bearer ana-token"})
        time.sleep(0.05)  # waiting for the lookup to expire
    assert provider_server.calls == 2


def test_a_slow_provider_is_503_quickly_and_not_remembered(provider_server):
    checker = provider(provider_server, oidc_timeout_seconds=0.3)
    provider_server.delay = 2
    started = time.monotonic()
    with pytest.raises(Unavailable, match="did not answer within 0.3 s"):
        checker.authenticate({"authorization": "Bearer ana-token"})
    assert time.monotonic() - started < 1.5
    provider_server.delay = 0
    assert checker.authenticate({"authorization": "Bearer ana-token"}).email == "ana@example.org"


def test_a_provider_that_is_down_is_503():
    checker = OidcUserinfo(
        Settings.of(
            OidcSettings,
            oidc_auth_enabled=True,
            oidc_host=f"http://127.0.0.1:{free_port()}",
            oidc_realm="r",
            oidc_timeout_seconds=1,
        )
    )
    with pytest.raises(Unavailable, match="try again later"):
        checker.authenticate({"authorization": "Bearer ana-token"})


def test_a_provider_error_is_503(provider_server):
    provider_server.status_override = 500
    with pytest.raises(Unavailable, match="answered 500"):
        provider(provider_server).authenticate({"authorization": "Bearer ana-token"})


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer x", "x"), ("x", "x"), ("Bearer", None), ("Token x", None), ("", None)],
)
def test_bearer_token(header, token):
    assert bearer_token(header) == token


def test_through_the_api(provider_server, tmp_path):
    settings = Settings.of(OidcSettings, data_dir=str(tmp_path), **provider_server.settings())
    with api_client(settings) as (client, services):
        services.store.permissions.upsert("P", "ana@example.org", 1)
        assert (
            client.simulate_get(
                "/code", params={"project_uuid": "P"}, headers={"Authorization": "Bearer ana-token"}
            ).status_code
            == 200
        )
        assert (
            client.simulate_get(
                "/code", params={"project_uuid": "Q"}, headers={"Authorization": "Bearer ana-token"}
            ).status_code
            == 403
        )
        assert client.simulate_get("/code", params={"project_uuid": "P"}).status_code == 401
        assert (
            client.simulate_get(
                "/code", params={"project_uuid": "P"}, headers={"Authorization": "Bearer bad"}
            ).status_code
            == 401
        )
        provider_server.status_override = 503
        down = client.simulate_get(
            "/code", params={"project_uuid": "P"}, headers={"Authorization": "Bearer other"}
        )
        assert down.status_code == 503 and "identity provider" in down.json["message"]


@pytest.mark.parametrize(
    ("environment", "variable"),
    [
        ({"FLOWS_CODE_ACTIONS_OIDC_AUTH_ENABLED": "true"}, "FLOWS_CODE_ACTIONS_OIDC_HOST"),
        (
            {"FLOWS_CODE_ACTIONS_OIDC_FAILURE_CACHE_SECONDS": "11"},
            "FLOWS_CODE_ACTIONS_OIDC_FAILURE_CACHE_SECONDS",
        ),
        (
            {"FLOWS_CODE_ACTIONS_OIDC_CACHE_SECONDS": "soon"},
            "FLOWS_CODE_ACTIONS_OIDC_CACHE_SECONDS",
        ),
    ],
)
def test_bad_oidc_settings_stop_the_start_naming_the_variable(environment, variable):
    with pytest.raises(ConfigurationError, match=f"^{variable}"):
        load_settings(environment)


def test_oidc_settings_are_read_at_start():
    settings = load_settings(
        {
            "FLOWS_CODE_ACTIONS_OIDC_AUTH_ENABLED": "yes",
            "FLOWS_CODE_ACTIONS_OIDC_HOST": "https://sso.example.com",
            "FLOWS_CODE_ACTIONS_OIDC_REALM": "r",
        }
    )
    assert settings.plugin(OidcSettings) == OidcSettings(
        oidc_auth_enabled=True, oidc_host="https://sso.example.com", oidc_realm="r"
    )
