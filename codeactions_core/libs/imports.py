"""What a Python source imports: its libraries (non-standard top-level modules).

Import names map to the distributions that provide them (``DISTRIBUTIONS``, for the
well-known ones named otherwise on the package index); nothing is imported to find out.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Mapping
from importlib.machinery import (
    BYTECODE_SUFFIXES,
    EXTENSION_SUFFIXES,
    SOURCE_SUFFIXES,
    ExtensionFileLoader,
    FileFinder,
    SourceFileLoader,
    SourcelessFileLoader,
)
from pathlib import Path

DISTRIBUTIONS: Mapping[str, str] = {
    # Well-known import names whose distribution on the package index is named
    # otherwise; any other import name is installed as the distribution of that name.
    "attr": "attrs",
    "bs4": "beautifulsoup4",
    "Crypto": "pycryptodome",
    "cv2": "opencv-python-headless",
    "dateutil": "python-dateutil",
    "dns": "dnspython",
    "docx": "python-docx",
    "dotenv": "python-dotenv",
    "fitz": "PyMuPDF",
    "git": "GitPython",
    "googleapiclient": "google-api-python-client",
    "jose": "python-jose",
    "jwt": "PyJWT",
    "magic": "python-magic",
    "multipart": "python-multipart",
    "nacl": "PyNaCl",
    "OpenSSL": "pyOpenSSL",
    "PIL": "pillow",
    "pkg_resources": "setuptools",
    "pptx": "python-pptx",
    "psycopg2": "psycopg2-binary",
    "serial": "pyserial",
    "skimage": "scikit-image",
    "sklearn": "scikit-learn",
    "slugify": "python-slugify",
    "socks": "PySocks",
    "telegram": "python-telegram-bot",
    "websocket": "websocket-client",
    "yaml": "PyYAML",
    "zmq": "pyzmq",
}

LOADERS = (
    (ExtensionFileLoader, EXTENSION_SUFFIXES),
    (SourceFileLoader, SOURCE_SUFFIXES),
    (SourcelessFileLoader, BYTECODE_SUFFIXES),
)
MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def imports_of(source: str) -> list[str]:
    """The top-level modules a source imports that are not standard library, sorted.

    Absolute imports anywhere in the source count (inside functions too);
    relative imports do not. A source that does not parse has none.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # MemoryError: parser stack
        return []
    names = {name for node in ast.walk(tree) for name in imported_modules(node)}
    return sorted(name for name in names if not is_standard(name))


def imported_modules(node: ast.AST) -> list[str]:
    """Top-level module names one node imports absolutely."""
    if isinstance(node, ast.Import):
        return [alias.name.partition(".")[0] for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module.partition(".")[0]]
    return []


def is_standard(name: str) -> bool:
    return name in sys.stdlib_module_names or name in sys.builtin_module_names


def distribution_of(name: str) -> str:
    """The distribution to install for an import name."""
    return DISTRIBUTIONS.get(name, name)


def normalize(name: str) -> str:
    """A distribution name as the package index compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def importable(name: str, directory: Path) -> bool:
    """Whether ``import name`` finds a module or package in ``directory`` (nothing is imported)."""
    return FileFinder(str(directory), *LOADERS).find_spec(name) is not None
