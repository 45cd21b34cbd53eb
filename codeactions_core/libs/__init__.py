"""Python libraries of codes ("codelibs"): what a source imports, recorded and installed.

A code's libraries are the top-level modules it imports that are not in the
standard library (``imports``). They are installed with the server's own
interpreter (``pip install --target``, hardened: ``installer``) into the one libs
directory, ``libs_dir(settings)`` = ``<DATA_DIR>/libs/python``, which the sandbox
shows read-only and puts on user code's ``sys.path`` after the standard library.
``service.LibraryService`` is the use case; ``command`` the ``codeactions libs``
subcommand.

Libraries are a Python matter: the old service's ``codelibs`` table admits only
``python`` (COMPAT.md "Storage"), so the language is domain data here.
"""

from __future__ import annotations

from pathlib import Path

from codeactions_core.settings import Settings

LANGUAGE = "python"
"""The language whose codes have libraries (the ``codelibs.language`` CHECK)."""


def libs_dir(settings: Settings) -> Path:
    """The libs directory: where libraries are installed and where the Python runtime
    finds them (importable, never writable, by user code)."""
    return Path(settings.data_dir).resolve() / "libs" / LANGUAGE
