"""A Go endpoint code created and called over HTTP, through the whole service."""

from __future__ import annotations

from codeactions_core.settings import Settings
from codeactions_core.testing.api import api_client

SOURCE = """package main

import "strings"

func Run(engine *Engine) {
    who := engine.Params.Get("name")
    engine.Log.Info("called by " + who)
    engine.Result.Set(map[string]string{"hi": strings.ToUpper(who)}, 201, "json")
}
"""


def test_a_go_endpoint_over_http(tmp_path):
    with api_client(Settings(data_dir=str(tmp_path))) as (client, _services):
        created = client.simulate_post(
            "/code",
            params={"name": "greeter", "language": "go", "type": "endpoint", "project_uuid": "P1"},
            body=SOURCE,
        )
        assert created.status_code == 201, created.text
        answer = client.simulate_get(f"/action/endpoint/{created.json['id']}", params={"name": "x"})
        assert answer.status_code == 201, answer.text
        assert answer.headers["content-type"] == "application/json; charset=UTF-8"
        assert answer.json == {"hi": "X"}
