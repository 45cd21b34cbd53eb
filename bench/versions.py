"""What code versions cost (issue 15): a pinned run against a run of the current version,
and a change of source (a new version, in one transaction with the code) against a
change of name only (no version).

    .venv/bin/python -m bench.versions [--store sqlite|postgres] [--rounds 150]

In process, through the Falcon app (no HTTP server), the four requests interleaved so
that the machine's noise falls on each alike; medians, and the ratios that matter.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable

from falcon import testing

from bench.execution import new_database
from codeactions_core.settings import Settings
from codeactions_core.web.app import create_app
from codeactions_core.wiring import build_services

SOURCE = "def Run(engine):\n    engine.result.set('v%d')\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--rounds", type=int, default=150)
    args = parser.parse_args()
    if args.store == "postgres":
        settings = Settings(db_type="postgres", db_uri=new_database())
    else:
        settings = Settings(data_dir=tempfile.mkdtemp(prefix="ca-bench-versions-"))
    services = build_services(settings)
    services.store.migrate()
    client = testing.TestClient(create_app(services=services))
    created = client.simulate_post(
        "/code",
        json={
            "name": "v",
            "type": "endpoint",
            "language": "python",
            "project_uuid": "p",
            "source": SOURCE % 0,
        },
    )
    code_id = created.json["id"]
    client.simulate_post(f"/run/{code_id}")  # starts the runtimes
    requests: dict[str, Callable[[int], object]] = {
        "run, current version": lambda i: client.simulate_post(f"/run/{code_id}"),
        "run, ?version=1": lambda i: client.simulate_post(
            f"/run/{code_id}", params={"version": "1"}
        ),
        "PATCH source (new version)": lambda i: client.simulate_patch(
            f"/code/{code_id}", json={"source": SOURCE % (i + 1)}
        ),
        "PATCH name (no version)": lambda i: client.simulate_patch(
            f"/code/{code_id}", json={"name": f"n{i}"}
        ),
    }
    timings: dict[str, list[float]] = {name: [] for name in requests}
    for round_number in range(args.rounds):
        for name, send in requests.items():
            started = time.perf_counter()
            answer = send(round_number)
            timings[name].append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 200, answer.text
    medians = {name: statistics.median(values) for name, values in timings.items()}
    for name, median in medians.items():
        print(f"{name:30s} median {median:7.2f} ms")
    print(
        "pinned / current run:          "
        f"{medians['run, ?version=1'] / medians['run, current version']:.2f}"
    )
    print(
        f"new-version / name-only PATCH: "
        f"{medians['PATCH source (new version)'] / medians['PATCH name (no version)']:.2f}"
    )
    services.close()


if __name__ == "__main__":
    main()
