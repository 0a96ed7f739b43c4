"""Run the real ``kubectl`` against a test API server (``kubectl get --raw``)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from harness.packages import ensure_kubectl

__all__ = ["CONTEXT", "kubectl", "kubectl_get_raw", "write_kubeconfig"]

CONTEXT = "adapter"
# Variables that would make kubectl read another config or credentials than ours.
_DROPPED_ENV = ("KUBECONFIG", "KUBECACHEDIR", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT")


def write_kubeconfig(
    path: str | os.PathLike[str],
    server: str,
    *,
    ca_file: str | None = None,
    insecure: bool = False,
    token: str | None = None,
    user: dict[str, Any] | None = None,
) -> Path:
    """Write a kubeconfig whose only context, ``adapter``, talks to ``server``.

    ``ca_file`` pins the server's CA; ``insecure`` skips verification (kubectl refuses both at
    once); ``token`` is sent as ``Authorization: Bearer``; ``user`` adds other fields of the
    kubeconfig's user (``tokenFile``, ``username``, ``client-certificate``, ``exec``...).
    """
    if ca_file is not None and insecure:
        raise ValueError("give ca_file or insecure, not both: kubectl rejects the combination")
    cluster: dict[str, Any] = {"server": server}
    if ca_file is not None:
        cluster["certificate-authority"] = str(Path(ca_file).resolve())
    if insecure:
        cluster["insecure-skip-tls-verify"] = True
    user = dict(user or {})
    if token is not None:
        user["token"] = token
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": cluster}],
        "users": [{"name": CONTEXT, "user": user}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT}}],
        "current-context": CONTEXT,
        "preferences": {},
    }
    target = Path(path)
    target.write_text(yaml.safe_dump(config, sort_keys=False))
    # kubectl warns about group/world-readable kubeconfigs holding credentials.
    target.chmod(0o600)
    return target


async def kubectl_get_raw(
    path: str, *, kubeconfig: Path, timeout: float = 30
) -> tuple[int, str, str]:
    """Run ``kubectl get --raw PATH``; return (exit code, stdout, stderr)."""
    return await kubectl("get", "--raw", path, kubeconfig=kubeconfig, timeout=timeout)


async def kubectl(*args: str, kubeconfig: Path, timeout: float = 30) -> tuple[int, str, str]:
    """Run ``kubectl ARGS...``; return (exit code, stdout, stderr).

    kubectl gets a fresh HOME and cache directory each call, so no discovery cache is shared
    between tests. On timeout the process is killed and TimeoutError raised.
    """
    binary = await asyncio.to_thread(ensure_kubectl)
    with tempfile.TemporaryDirectory(prefix="harness-kubectl-") as home:
        cache = str(Path(home) / "cache")
        env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
        env.update(HOME=home, KUBECACHEDIR=cache)
        process = await asyncio.create_subprocess_exec(
            binary,
            *args,
            f"--kubeconfig={kubeconfig}",
            f"--cache-dir={cache}",
            # A backstop should we die before killing it; our own timeout comes first.
            f"--request-timeout={math.ceil(timeout) + 5}s",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            # Its own process group: Google's kubectl is a dispatcher that may run the real
            # kubectl as a child, and both must go on timeout.
            start_new_session=True,
        )
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
        except BaseException:
            # Timed out or cancelled: no process of the group may outlive the call.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await asyncio.shield(process.wait())
            raise
    code = process.returncode
    assert code is not None
    return code, stdout.decode(errors="replace"), stderr.decode(errors="replace")
