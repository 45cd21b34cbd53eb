"""A client project folder: ``codeactions.toml`` and one source file per code."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeactions_core.client.api import EXIT_USAGE, ClientError

CONFIG_NAME = "codeactions.toml"
LANGUAGES = {".py": "python", ".js": "javascript", ".go": "go"}
EXTENSIONS = {language: suffix for suffix, language in LANGUAGES.items()}
CODE_TYPES = ("endpoint", "flow")


@dataclass
class CodeSettings:
    type: str = "endpoint"
    timeout: int | None = None


@dataclass
class Project:
    root: Path
    project_uuid: str
    url: str = ""
    codes: dict[str, CodeSettings] = field(default_factory=dict)

    @classmethod
    def load(cls, root: Path) -> Project:
        path = root / CONFIG_NAME
        if not path.is_file():
            raise ClientError(
                f"no {CONFIG_NAME} in {root}; run `codeactions client init` first", EXIT_USAGE
            )
        try:
            document = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ClientError(f"{path}: {exc}", EXIT_USAGE) from None
        project = str(document.get("project_uuid") or "").strip()
        if not project:
            raise ClientError(f"{path}: project_uuid is required", EXIT_USAGE)
        codes = {}
        for name, entry in (document.get("codes") or {}).items():
            kind = str(entry.get("type", "endpoint"))
            if kind not in CODE_TYPES:
                raise ClientError(f"{path}: codes.{name}.type must be endpoint or flow", EXIT_USAGE)
            timeout = entry.get("timeout")
            if timeout is not None and not isinstance(timeout, int):
                raise ClientError(
                    f"{path}: codes.{name}.timeout must be an integer (seconds)", EXIT_USAGE
                )
            codes[name] = CodeSettings(kind, timeout)
        return cls(root, project, str(document.get("url") or ""), codes)

    def sources(self) -> dict[str, tuple[str, Path]]:
        """Every code file in the folder: name → (language, path)."""
        found: dict[str, tuple[str, Path]] = {}
        for path in sorted(self.root.iterdir()):
            language = LANGUAGES.get(path.suffix)
            if language and path.is_file() and not path.name.startswith((".", "_")):
                if path.stem in found:
                    raise ClientError(
                        f"two files for code {path.stem!r}: keep one of "
                        f"{found[path.stem][1].name} and {path.name}",
                        EXIT_USAGE,
                    )
                found[path.stem] = (language, path)
        return found

    def settings_of(self, name: str) -> CodeSettings:
        return self.codes.get(name, CodeSettings())

    def save(self) -> None:
        """Write ``codeactions.toml`` back (after ``pull`` learned codes)."""
        (self.root / CONFIG_NAME).write_text(render(self))


def quote(value: str) -> str:
    return json.dumps(value)


def render(project: Project) -> str:
    lines = [
        (
            "# A codeactions client project: every NAME.py, NAME.js and NAME.go in this folder "
            "is a code"
        ),
        "# of the project below. `codeactions client push` creates or updates them on the server.",
        f"project_uuid = {quote(project.project_uuid)}",
    ]
    lines.append(
        f"url = {quote(project.url)}" if project.url else '# url = "http://127.0.0.1:8050"'
    )
    for name, settings in sorted(project.codes.items()):
        lines += ["", f"[codes.{quote(name)}]", f"type = {quote(settings.type)}"]
        if settings.timeout is not None:
            lines.append(f"timeout = {settings.timeout}")
    return "\n".join(lines) + "\n"


def read_config_file(path: Path) -> dict[str, Any]:
    """The client's own config file (``url``, ``token``); empty when absent."""
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ClientError(f"{path}: {exc}", EXIT_USAGE) from None
