"""The suite's own fakes and helpers (servers, network namespaces, private PostgreSQL and Redis),
imported as ``tests.support`` by the tests and the benchmarks (which run from the repository
root)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The repository root: the working directory of ``python -m tests.support.<helper>`` children."""
