"""What project secrets cost a run (issue 15): the same trivial Python action through
``GET /action/endpoint/{id}`` on two real servers (SQLite) measured in one run,
interleaved: one without SECRETS_KEY (no secret work at all) and one with a key and
five secrets in the code's project (one query, five decryptions, and masking of the
result, logs and output on every run).

    .venv/bin/python -m bench.secrets [--runs 300] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import requests

from codeactions_core.secret_box import new_key
from codeactions_core.testing.server import start_server

ACTION = 'def Run(engine):\n    engine.log.info("hi")\n    engine.result.set("hi")\n'


def prepare(server, with_secrets: bool) -> str:
    session = requests.Session()
    if with_secrets:
        for index in range(5):
            put = session.put(
                server.url(f"/projects/P/secrets/S{index}"), json={"value": f"value-{index}-xyz"}
            )
            assert put.status_code == 200, put.text
    created = session.post(
        server.url("/code"),
        params={"name": "b", "language": "python", "type": "endpoint", "project_uuid": "P"},
        data=ACTION,
    )
    return created.json()["id"]


def latencies(url: str, runs: int) -> list[float]:
    session, measured = requests.Session(), []
    for _ in range(runs):
        started = time.perf_counter()
        answer = session.get(url)
        measured.append(time.perf_counter() - started)
        assert answer.text == "hi", answer.text
    return measured


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plain = start_server(
            {
                "FLOWS_CODE_ACTIONS_DATA_DIR": f"{tmp}/plain",
                "FLOWS_CODE_ACTIONS_CODE_LIMITER_MAX_REQUESTS": "1000000",
            },
            Path(tmp),
        )
        keyed = start_server(
            {
                "FLOWS_CODE_ACTIONS_DATA_DIR": f"{tmp}/keyed",
                "FLOWS_CODE_ACTIONS_CODE_LIMITER_MAX_REQUESTS": "1000000",
                "FLOWS_CODE_ACTIONS_SECRETS_KEY": new_key(),
            },
            Path(tmp),
        )
        try:
            urls = {
                "no key": plain.url(f"/action/endpoint/{prepare(plain, False)}"),
                "key + 5 secrets": keyed.url(f"/action/endpoint/{prepare(keyed, True)}"),
            }
            for url in urls.values():
                latencies(url, 50)  # warm up
            results: dict[str, list[float]] = {name: [] for name in urls}
            for _ in range(args.rounds):
                for name, url in urls.items():
                    results[name] += latencies(url, args.runs // args.rounds)
        finally:
            plain.stop()
            keyed.stop()
    medians = {name: statistics.median(values) * 1000 for name, values in results.items()}
    for name, median in medians.items():
        print(f"{name}: p50 {median:.2f} ms over {len(results[name])} runs")
    print(f"ratio key+secrets / no key: {medians['key + 5 secrets'] / medians['no key']:.3f}")


if __name__ == "__main__":
    main()
