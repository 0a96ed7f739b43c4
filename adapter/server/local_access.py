"""How to reach an adapter run with --no-cluster: a kubeconfig beside its self-signed
certificate, and one log line with the curl and kubectl commands that read it.

kubectl without credentials in its kubeconfig prompts for a user name, so the kubeconfig
carries a token; without a cluster the adapter authenticates nobody and ignores it.
"""

import logging
import os
from pathlib import Path

import yaml

from adapter.server.tls import SELF_SIGNED_PAIR_NAME

__all__ = ["announce_local_access", "local_kubeconfig"]

log = logging.getLogger(__name__)

_DISCOVERY = "/apis/custom.metrics.k8s.io/v1beta2"
_NAME = "prometheus-adapter"


def local_kubeconfig(server: str, ca_file: Path) -> str:
    """A kubeconfig whose one context reaches `server`, trusting `ca_file`."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": _NAME, "cluster": {"server": server, "certificate-authority": str(ca_file)}}
        ],
        "users": [{"name": _NAME, "user": {"token": "no-cluster"}}],
        "contexts": [{"name": _NAME, "context": {"cluster": _NAME, "user": _NAME}}],
        "current-context": _NAME,
    }
    return yaml.safe_dump(config, sort_keys=False)


def announce_local_access(cert_dir: str, host: str, port: int) -> None:
    """Write `<cert-dir>/kubeconfig` and log how to query the adapter. Only for the
    self-signed certificate in `cert_dir`: for a certificate of its own the caller knows
    which CA to trust."""
    ca_file = (Path(cert_dir) / f"{SELF_SIGNED_PAIR_NAME}.crt").resolve()
    shown_host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    if ":" in shown_host:
        shown_host = f"[{shown_host}]"
    server = f"https://{shown_host}:{port}"
    kubeconfig = ca_file.parent / "kubeconfig"
    try:
        kubeconfig.write_text(local_kubeconfig(server, ca_file))
        os.chmod(kubeconfig, 0o600)
    except OSError as exc:
        log.info("not writing a kubeconfig for local use to %s: %s", kubeconfig, exc)
        kubectl = ""
    else:
        kubectl = f"; or kubectl --kubeconfig={kubeconfig} get --raw {_DISCOVERY}"
    log.info("query it with: curl -s --cacert %s %s%s%s", ca_file, server, _DISCOVERY, kubectl)
