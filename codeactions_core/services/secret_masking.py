"""Masking secret values in what a run reports, as CI systems do: ``***`` in their place.

The server masks (it never trusts the harness to): the result, every log line,
standard output and error, every text in ``extra`` (response headers included) and
the request the run record keeps. Besides the value itself, its JSON-escaped forms
are masked (a value inside a JSON result), and in a binary (base64) result its UTF-8
bytes.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
from collections.abc import Iterable
from typing import Any

from codeactions_core.execution.runtime import LogLine, Outcome

MASK = "***"


class Masker:
    """Replaces every form of the given values in text, longest first."""

    def __init__(self, values: Iterable[str]) -> None:
        forms: set[str] = set()
        for value in values:
            if value:
                escaped = json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]
                forms.update({value, *escaped})
        ordered = sorted(forms, key=len, reverse=True)
        self._text = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        raw = sorted({value.encode("utf-8") for value in values if value}, key=len, reverse=True)
        self._bytes = re.compile(b"|".join(map(re.escape, raw))) if raw else None

    def __bool__(self) -> bool:
        return self._text is not None

    def text(self, text: str) -> str:
        return self._text.sub(MASK, text) if self._text is not None and text else text

    def data(self, data: bytes) -> bytes:
        return self._bytes.sub(MASK.encode(), data) if self._bytes is not None else data

    def value(self, value: Any) -> Any:
        """Every string inside a JSON-like value masked (keys too)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(key)): self.value(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(item) for item in value]
        return value


def mask_outcome(outcome: Outcome, values: Iterable[str]) -> Outcome:
    """``outcome`` with every secret value masked."""
    masker = Masker(values)
    if not masker:
        return outcome
    extra = masker.value(outcome.extra)
    if outcome.extra.get("result_encoding") == "base64":
        result = mask_base64(outcome.result, masker)
    else:
        result = masker.text(outcome.result)
    return dataclasses.replace(
        outcome,
        result=result,
        extra=extra,
        logs=[LogLine(line.type, masker.text(line.content)) for line in outcome.logs],
        stdout=masker.text(outcome.stdout),
        stderr=masker.text(outcome.stderr),
        content_type=masker.value(outcome.content_type),
    )


def mask_base64(text: str, masker: Masker) -> str:
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return masker.text(text)
    return base64.b64encode(masker.data(data)).decode("ascii")


def mask_value(value: Any, values: Iterable[str]) -> Any:
    """A JSON-like value (e.g. a stored request's params or headers) with secrets masked."""
    masker = Masker(values)
    return masker.value(value) if masker else value
