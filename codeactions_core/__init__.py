"""codeactions: store small programs and run them on demand."""

from importlib.metadata import PackageNotFoundError, version

from pluggy import HookimplMarker

try:
    __version__ = version("codeactions-core")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"

hookimpl = HookimplMarker("codeactions")
"""Decorator for plugin hook implementations: ``@hookimpl`` or ``@hookimpl(trylast=True)``."""

__all__ = ["__version__", "hookimpl"]
