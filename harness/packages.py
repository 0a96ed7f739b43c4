"""Find a tool's binary, installing its Debian package when we can (root with apt-get)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = ["ensure_debian_package", "ensure_kubectl", "ensure_prometheus"]

_POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
_APT_LISTS = Path("/var/lib/apt/lists")
# Serialises installs from threads of one process; apt's own lock covers other processes.
_install_lock = threading.Lock()
# Sbin directories are not on every PATH, and Debian puts a few tools there.
_EXTRA_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


def _which(binary: str) -> str | None:
    found = shutil.which(binary)
    if found is not None:
        return found
    return shutil.which(binary, path=os.pathsep.join(_EXTRA_DIRS))


def _package_lists_empty() -> bool:
    try:
        return not any("Packages" in entry.name for entry in _APT_LISTS.iterdir())
    except OSError:
        return True


@contextlib.contextmanager
def _no_service_start() -> Iterator[None]:
    """Keep maintainer scripts from starting daemons (Debian's prometheus has an init script).

    An existing policy-rc.d is the machine owner's and is left as it is; otherwise one that
    denies every start (exit 101) is put in place for the install only, then removed.
    """
    if _POLICY_RC_D.exists() or _POLICY_RC_D.is_symlink():
        yield
        return
    _POLICY_RC_D.write_text("#!/bin/sh\n# harness: no service starts during install\nexit 101\n")
    try:
        _POLICY_RC_D.chmod(0o755)
        yield
    finally:
        _POLICY_RC_D.unlink(missing_ok=True)


def _apt(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    return subprocess.run(
        ["apt-get", "-q", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )


def _install(package: str) -> str:
    """Install ``package`` quietly; return apt's output tail when it fails, else ""."""
    install = ("install", "-y", "--no-install-recommends", package)
    with _no_service_start():
        if _package_lists_empty():
            _apt("update")
        result = _apt(*install)
        if result.returncode != 0:
            # Stale lists are the usual reason (a package version no longer on the mirror).
            _apt("update")
            result = _apt(*install)
    if result.returncode == 0:
        return ""
    tail = (result.stdout + result.stderr).strip().splitlines()[-10:]
    return "\n".join(tail)


def ensure_debian_package(binary: str, package: str) -> str:
    """Return the path of ``binary``, installing Debian's ``package`` when it is missing.

    Installing needs root and apt-get; without them, or when the install fails, RuntimeError
    says what to install. No service of the package is started.
    """
    found = _which(binary)
    if found is not None:
        return found
    detail = ""
    if os.geteuid() == 0 and _which("apt-get") is not None:
        with _install_lock:
            found = _which(binary)
            if found is not None:
                return found
            detail = _install(package)
        found = _which(binary)
        if found is not None:
            return found
    message = f"{binary!r} not found: install the Debian package {package!r}"
    message += f" (apt-get install {package})"
    if detail:
        message += f"; apt-get failed:\n{detail}"
    raise RuntimeError(message)


def ensure_prometheus() -> str:
    """The ``prometheus`` server binary (Debian package ``prometheus``, also has promtool)."""
    return ensure_debian_package("prometheus", "prometheus")


def ensure_kubectl() -> str:
    """The ``kubectl`` binary (Debian package ``kubernetes-client``)."""
    return ensure_debian_package("kubectl", "kubernetes-client")
