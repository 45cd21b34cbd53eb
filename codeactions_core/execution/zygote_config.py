"""What a zygote's sandboxes see and who they run as: the binds of the allowlist root, the
server's own directories masked, the uid range."""

from __future__ import annotations

import os
import platform
import pwd
import sysconfig
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from codeactions_core.settings import Settings


@dataclass(frozen=True)
class ZygoteConfig:
    """What a zygote's sandboxes see and who they run as."""

    binds: tuple[str | tuple[str, str], ...] = ()
    """Host paths (files or folders) bound read-only into the empty root: at the same path,
    or ``(host path, path inside)``."""
    writable: tuple[str | tuple[str, str], ...] = ()
    """Host folders bound read-write (e.g. a build workspace), the same way; they must exist."""
    masks: tuple[str, ...] = ()
    """Folders covered by an empty one where a bind would show them (the server's own files)."""
    preload: Mapping[str, str] | None = None
    """``{"path", "module", "entry"}`` of a harness the zygote imports and each child calls."""
    uid: int = 65534
    gid: int = 65534
    """Who runs execute as without a uid range (or as root without one)."""
    uid_base: int = 200000
    uid_count: int = 0
    """Each live sandbox gets its own uid from [uid_base, uid_base + uid_count) (root only)."""
    hostname: str = "sandbox"
    want_namespaces: bool = True
    want_cgroups: bool = True
    want_seccomp: bool = True
    scratch_root: str = "/tmp"
    """Without a mount namespace: where each run's scratch directory is made."""

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        binds: Sequence[str | tuple[str, str]] = (),
        writable: Sequence[str | tuple[str, str]] = (),
        preload: Mapping[str, str] | None = None,
    ) -> ZygoteConfig:
        """The runtime's binds plus what every root has (shared libraries, CA certificates,
        time zones); the server's working, data, metrics and home directories masked."""
        account = (
            pwd.getpwnam(settings.sandbox_user) if not settings.sandbox_user.isdigit() else None
        )
        uid = account.pw_uid if account else int(settings.sandbox_user)
        gid = account.pw_gid if account else uid
        masks = (
            os.getcwd(),
            str(Path(settings.data_dir).resolve()),
            server_home(),
            str(settings.metrics_directory.resolve()),
            *settings.sandbox_hidden_paths,
        )
        return cls(
            binds=(*system_binds(), *binds),
            writable=tuple(writable),
            masks=tuple(os.path.realpath(path) for path in masks),
            preload=preload,
            uid=uid,
            gid=gid,
            uid_base=settings.sandbox_uid_base,
            uid_count=settings.sandbox_uid_count,
        )


def system_binds() -> tuple[str, ...]:
    """What every sandbox's root holds besides its runtime: the shared-library folders and
    the dynamic loader (no executables of the host), CA certificates and time zones."""
    triplet = sysconfig.get_config_var("MULTIARCH") or f"{platform.machine()}-linux-gnu"
    candidates = (
        f"/lib/{triplet}",
        f"/usr/lib/{triplet}",
        "/lib64",
        "/usr/lib64",
        "/etc/ld.so.cache",
        "/etc/ssl/certs",
        "/usr/share/ca-certificates",
        "/etc/ssl/openssl.cnf",
        "/usr/lib/ssl/cert.pem",
        "/usr/lib/ssl/certs",
        "/usr/lib/ssl/openssl.cnf",
        "/etc/pki/tls/certs",
        "/etc/localtime",
        "/usr/share/zoneinfo",
    )
    return tuple(path for path in candidates if os.path.lexists(path))


PER_RUN_MOUNTS = ("/tmp", "/dev", "/proc")


def covered_binds(config: ZygoteConfig) -> list[str]:
    """Binds whose place in the root lies under a per-run mount, which would hide them."""
    places = []
    for entry in (*config.binds, *config.writable):
        place = os.path.realpath(entry) if isinstance(entry, str) else entry[1]
        if any(place == mount or place.startswith(mount + "/") for mount in PER_RUN_MOUNTS):
            places.append(place)
    return places


def server_home() -> str:
    return pwd.getpwuid(os.getuid()).pw_dir
