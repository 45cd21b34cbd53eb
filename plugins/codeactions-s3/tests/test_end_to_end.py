"""A Python code's log lines through the whole API, kept in S3: in process, and on a real server."""

from __future__ import annotations

import pytest
import requests

from codeactions_core.testing.api import api_client
from codeactions_core.testing.server import start_server

pytest.importorskip("codeactions_sql", reason="the end-to-end tests need the SQLite store")
pytest.importorskip("codeactions_python", reason="the end-to-end tests need the Python runtime")

SOURCE = """def Run(engine):
    for i in range(25):
        engine.log.info(f"line {i}")
    engine.log.error("done")
    engine.result.set({"ok": True}, content_type="json")
"""
QUERY = {"name": "logger", "language": "python", "type": "endpoint", "project_uuid": "P"}
EXPECTED = [f"line {i}" for i in range(25)] + ["done"]


def test_a_run_logs_to_s3_and_lists_back_in_order(tmp_path, s3_settings, bucket_keys):
    with api_client(s3_settings(data_dir=str(tmp_path))) as (client, services):
        created = client.simulate_post("/code", params=QUERY, body=SOURCE)
        assert created.status_code == 201, created.text
        code_id = created.json["id"]
        ran = client.simulate_get(f"/action/endpoint/{code_id}")
        assert (ran.status_code, ran.json) == (200, {"ok": True})

        (run,) = client.simulate_get("/coderun", params={"code_id": code_id}).json
        location = run["extra"]["logs_location"]
        assert location.startswith("codeactions/logs/") and location.endswith(f"/{run['id']}/")
        assert len(bucket_keys(location)) == 26

        pages = [
            client.simulate_get("/codelog", params={"run_id": run["id"], "page": n}).json
            for n in (1, 2)
        ]
        assert [(p["total"], p["last_page"], len(p["data"])) for p in pages] == [
            (26, 2, 20),
            (26, 2, 6),
        ]
        assert [line["content"] for p in pages for line in p["data"]] == EXPECTED
        assert pages[1]["data"][-1]["type"] == "error"

        by_code = client.simulate_get("/codelog", params={"code_id": code_id}).json
        assert [line["content"] for line in by_code["data"]] == EXPECTED[::-1][:20]
        one = pages[0]["data"][3]
        assert client.simulate_get(f"/codelog/{one['id']}").json == one

        assert (
            services.store.logs.list_by_code(code_id, page=1, per_page=20).total == 0
        )  # none in the database
        health = client.simulate_get("/health")
        assert (health.status_code, health.json["services"]["s3"]["status"]) == (200, "healthy")
        services.log_store.close()


@pytest.mark.e2e
def test_the_real_server_logs_to_s3(tmp_path, s3_server, s3_bucket, bucket_keys):
    settings = {
        "FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path / "data"),
        **s3_server.environment(s3_bucket),
    }
    server = start_server(settings, tmp_path, workers=2)
    try:
        created = requests.post(server.url("/code"), params=QUERY, data=SOURCE.encode(), timeout=10)
        assert created.status_code == 201, created.text
        code_id = created.json()["id"]
        ran = requests.get(server.url(f"/action/endpoint/{code_id}"), timeout=30)
        assert (ran.status_code, ran.json()) == (200, {"ok": True})
        (run,) = requests.get(
            server.url("/coderun"), params={"code_id": code_id}, timeout=10
        ).json()
        assert len(bucket_keys(run["extra"]["logs_location"])) == 26
        pages = [
            requests.get(
                server.url("/codelog"), params={"run_id": run["id"], "page": n}, timeout=10
            ).json()
            for n in (1, 2)
        ]
        assert [line["content"] for p in pages for line in p["data"]] == EXPECTED
        assert (
            s3_server.environment(s3_bucket)["FLOWS_CODE_ACTIONS_S3_SECRET_ACCESS_KEY"]
            not in server.log()
        )
    finally:
        assert server.stop() == 0
