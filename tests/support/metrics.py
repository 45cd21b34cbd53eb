"""Reading a Prometheus text exposition in tests."""

from __future__ import annotations

import re

SAMPLE = re.compile(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$", re.MULTILINE)
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample of an exposition as {(name, sorted labels): value}, names exactly as
    written (prometheus-client's own parser would rename counters to *_total)."""
    return {
        (name, tuple(sorted(LABEL.findall(labels or "")))): float(number)
        for name, labels, number in SAMPLE.findall(text)
    }


def value(text: str, name: str, **labels: str) -> float:
    """One sample's value; 0 when the exposition has no such sample."""
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)
