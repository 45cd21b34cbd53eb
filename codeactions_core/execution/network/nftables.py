"""nftables through libnftables, without the ``nft`` command."""

from __future__ import annotations

import ctypes
import ctypes.util
import threading

from codeactions_core.execution.network.errors import NetworkSetupError


class Nftables:
    """A libnftables context, bound to the network namespace of the thread that made it.

    A table created with ``flags owner`` through it lives as long as the context
    (its netlink socket), hence at most as long as this process.
    """

    _lib: ctypes.CDLL | None = None

    @classmethod
    def library(cls) -> ctypes.CDLL:
        if cls._lib is None:
            name = ctypes.util.find_library("nftables") or "libnftables.so.1"
            try:
                lib = ctypes.CDLL(name, use_errno=True)
            except OSError:
                raise NetworkSetupError("libnftables not found: install nftables") from None
            lib.nft_ctx_new.restype = ctypes.c_void_p
            lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
            lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
            lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
            lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
            lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
            cls._lib = lib
        return cls._lib

    def __init__(self) -> None:
        self._library = self.library()
        self._ctx = self._library.nft_ctx_new(0)
        if not self._ctx:
            raise NetworkSetupError("libnftables could not make a context")
        self._library.nft_ctx_buffer_output(self._ctx)
        self._library.nft_ctx_buffer_error(self._ctx)
        self._lock = threading.Lock()

    def run(self, commands: str) -> str:
        """Run nft commands (a ruleset file's text); their output. NetworkSetupError on failure."""
        with self._lock:
            if not self._ctx:
                raise NetworkSetupError("nftables context closed")
            result = self._library.nft_run_cmd_from_buffer(self._ctx, commands.encode())
            output = (self._library.nft_ctx_get_output_buffer(self._ctx) or b"").decode()
            error = (self._library.nft_ctx_get_error_buffer(self._ctx) or b"").decode()
        if result != 0:
            raise NetworkSetupError(f"nftables refused the ruleset: {error.strip()}")
        return output

    def close(self) -> None:
        with self._lock:
            if self._ctx:
                self._library.nft_ctx_free(self._ctx)
                self._ctx = None
