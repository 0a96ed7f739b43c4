"""The image without a Docker engine: the Dockerfile's recipe performed into a directory.

:func:`build_image_root` runs scripts/container-recipe.sh into a directory standing for the
image's root filesystem (a runtime venv on the system Python, the ``/adapter`` link), then
makes it root-owned and read-only as a read-only root filesystem is. :func:`user_switch`
starts a process as a non-root uid, as ``securityContext.runAsUser`` does, and
:func:`in_pod_mounts` wraps a command in a private mount namespace that looks like a pod's:
the root filesystem read-only, writable emptyDirs, and the service account mounted at
``/var/run/secrets/kubernetes.io/serviceaccount``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "IMAGE_GID",
    "IMAGE_UID",
    "SERVICE_ACCOUNT_DIR",
    "ImageRoot",
    "Unavailable",
    "build_image_root",
    "in_pod_mounts",
    "pod_mounts_available",
    "system_python",
    "user_switch",
]

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "scripts" / "container-recipe.sh"
# The image's USER.
IMAGE_UID = IMAGE_GID = 65532
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
# The PATH of python:3.11-slim after the image's own bin directory.
_SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Building the wheels takes ~20 s here; a slow mirror can take much longer.
RECIPE_TIMEOUT = 900


class Unavailable(Exception):
    """This machine cannot do it (not root, no python3.11, no mount namespaces)."""


@dataclass(frozen=True)
class ImageRoot:
    """The recipe's result, hardened like the image's read-only root filesystem."""

    root: Path
    venv: Path
    config_dir: Path
    recipe_seconds: float

    @property
    def entrypoint(self) -> Path:
        """ENTRYPOINT ["prometheus-adapter"], as PATH finds it in the image."""
        return self.venv / "bin" / "prometheus-adapter"

    @property
    def adapter_link(self) -> Path:
        """``/adapter``, the Go image's entrypoint path, for ``command: [/adapter]``."""
        return self.root / "adapter"

    @property
    def config(self) -> Path:
        return self.config_dir / "config.yaml"

    def env(self, tmp: Path) -> dict[str, str]:
        """The image's ENV with `tmp` standing for /tmp, and nothing of the dev venv."""
        return {
            "PATH": f"{self.venv / 'bin'}:{_SYSTEM_PATH}",
            "HOME": str(tmp),
            "TMPDIR": str(tmp),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "LANG": "C.UTF-8",
        }


def system_python() -> str:
    """A python3.11 any uid can execute (the venv links to it)."""
    for candidate in ("/usr/bin/python3.11", "/usr/local/bin/python3.11"):
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("python3.11")
    if found is None:
        raise Unavailable("no python3.11 on this machine to build the runtime venv with")
    return str(Path(found).resolve())


def user_switch(uid: int, gid: int) -> tuple[list[str], Callable[[], None] | None]:
    """How to start a process as uid/gid with no supplementary groups: a setpriv prefix, or
    a preexec function that drops privileges in the child."""
    if os.geteuid() != 0:
        raise Unavailable(f"starting a process as uid {uid} needs root")
    setpriv = shutil.which("setpriv")
    if setpriv is not None:
        return [setpriv, f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--"], None

    def drop() -> None:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)

    return [], drop


def make_read_only(top: Path) -> None:
    """Root-owned, directories and executables 0555, other files 0444 (symlinks left alone)."""
    for dirpath, _dirnames, filenames in os.walk(top):
        os.chown(dirpath, 0, 0)
        os.chmod(dirpath, 0o555)
        for name in filenames:
            path = os.path.join(dirpath, name)
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                continue
            os.chown(path, 0, 0)
            os.chmod(path, 0o555 if info.st_mode & stat.S_IXUSR else 0o444)


def build_image_root(root: Path, config: Path) -> ImageRoot:
    """Run the recipe into `root` (which uid 65532 must be able to reach), put `config` where
    the ConfigMap is mounted (/etc/adapter/config.yaml) and make the tree read-only."""
    python = system_python()
    if os.geteuid() != 0:
        raise Unavailable("making the image tree root-owned and read-only needs root")
    os.chmod(root, 0o755)
    env = {**os.environ, "PYTHON": python}
    # The dev venv must not leak into the image's build or runtime.
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(sys.prefix)
    )
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(RECIPE), str(root)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=RECIPE_TIMEOUT,
        check=False,
    )
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"container recipe failed:\n{result.stdout[-6000:]}")
    config_dir = root / "etc" / "adapter"
    config_dir.mkdir(parents=True)
    shutil.copyfile(config, config_dir / "config.yaml")
    make_read_only(root)
    return ImageRoot(root, root / "opt" / "adapter", config_dir, seconds)


def pod_mounts_available() -> bool:
    """Whether this machine lets us make private mount namespaces (root, util-linux)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def in_pod_mounts(
    command: Sequence[str],
    *,
    empty_dirs: Sequence[Path],
    service_account: Mapping[str, Path] | None = None,
    workdir: Path | None = None,
) -> list[str]:
    """`command` run in a private mount namespace shaped like a container's: each of
    `empty_dirs` a fresh writable tmpfs (an emptyDir), `service_account` files (name ->
    source) mounted at SERVICE_ACCOUNT_DIR, and then the root filesystem remounted read-only,
    so that any write elsewhere fails with EROFS; `workdir` is the WORKDIR to start in (after
    the mounts, so that an emptyDir there is the new tmpfs). The host's mounts are
    untouched."""
    steps = []
    for directory in empty_dirs:
        steps.append(f"mount -t tmpfs -o mode=1777 emptydir {shlex.quote(str(directory))}")
    if service_account:
        # /var/run is /run: a private tmpfs there holds the service account volume.
        steps.append("mount -t tmpfs -o mode=0755 run /run")
        steps.append(f"mkdir -p {SERVICE_ACCOUNT_DIR}")
        for name, source in service_account.items():
            target = shlex.quote(f"{SERVICE_ACCOUNT_DIR}/{name}")
            steps.append(f"cp {shlex.quote(str(source))} {target} && chmod 0644 {target}")
    steps.append("mount -o remount,bind,ro /")
    if workdir is not None:
        steps.append(f"cd {shlex.quote(str(workdir))}")
    script = " && ".join(steps) + ' && exec "$@"'
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        script,
        "sh",
        *command,
    ]
