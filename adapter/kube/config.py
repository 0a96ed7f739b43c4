"""How to reach the Kubernetes API server: in-cluster settings or a kubeconfig subset.

Covers what the adapter's deployments use (client-go's `rest.InClusterConfig` and the
common kubeconfig fields, as clientcmd reads them). Auth providers (OIDC, gcp, azure) are
rejected with a clear error rather than silently connecting anonymously.
"""

import base64
import binascii
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "EXEC_API_VERSIONS",
    "ExecCredentialConfig",
    "KubeConfig",
    "KubeConfigError",
    "load_config",
    "load_in_cluster",
    "load_kubeconfig",
]

_log = logging.getLogger(__name__)

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

EXEC_API_VERSIONS = (
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
)


class KubeConfigError(ValueError):
    """The Kubernetes connection settings are missing, malformed or unsupported."""


@dataclass(frozen=True)
class ExecCredentialConfig:
    """A kubeconfig `user.exec` credential plugin."""

    command: str
    api_version: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    provide_cluster_info: bool = False


@dataclass(frozen=True)
class KubeConfig:
    """Connection settings for one API server."""

    server: str  # https://host:port, possibly with a path prefix
    ca_data: bytes | None = field(default=None, repr=False)  # PEM
    insecure_skip_tls_verify: bool = False
    token: str | None = field(default=None, repr=False)
    token_file: str | None = None  # re-read when it changes; wins over `token`
    username: str | None = field(default=None, repr=False)  # basic auth
    password: str | None = field(default=None, repr=False)
    client_cert_data: bytes | None = field(default=None, repr=False)
    client_key_data: bytes | None = field(default=None, repr=False)
    exec_command: ExecCredentialConfig | None = None
    tls_server_name: str | None = None


def load_config(kubeconfig_path: str) -> KubeConfig:
    """The Go adapter's flags: an empty path means in-cluster, else a kubeconfig file."""
    if not kubeconfig_path:
        return load_in_cluster()
    return load_kubeconfig(kubeconfig_path)


def load_in_cluster(
    *,
    token_path: str = f"{SA_DIR}/token",
    ca_path: str = f"{SA_DIR}/ca.crt",
    host_env: Mapping[str, str] = os.environ,
) -> KubeConfig:
    """client-go's `rest.InClusterConfig`: the service env vars and the service account."""
    host = host_env.get("KUBERNETES_SERVICE_HOST", "")
    port = host_env.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise KubeConfigError(
            "unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and "
            "KUBERNETES_SERVICE_PORT must be defined (or pass a kubeconfig)"
        )
    if ":" in host and not host.startswith("["):  # IPv6 literal (Go's net.JoinHostPort)
        host = f"[{host}]"
    try:
        Path(token_path).read_bytes()  # fail at startup, as client-go does
    except OSError as err:
        raise KubeConfigError(f"unable to read the service account token: {err}") from None
    ca_data: bytes | None = None
    try:
        ca_data = Path(ca_path).read_bytes()
    except OSError as err:
        # client-go logs this and falls back to the system trust store.
        _log.error("expected to load root CA config from %s, but got err: %s", ca_path, err)
    return KubeConfig(server=f"https://{host}:{port}", ca_data=ca_data, token_file=token_path)


def load_kubeconfig(path: str, context: str | None = None) -> KubeConfig:
    """One context (the current one unless named) of a kubeconfig file."""
    try:
        text = Path(path).read_bytes()
    except OSError as err:
        raise KubeConfigError(f"unable to read kubeconfig {path!r}: {err}") from None
    try:
        doc = yaml.load(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError as err:
        raise KubeConfigError(f"kubeconfig {path!r} is not valid YAML: {err}") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise KubeConfigError(f"kubeconfig {path!r}: expected a mapping at the top level")
    base_dir = Path(path).resolve().parent
    ctx_name = context or doc.get("current-context") or ""
    if not ctx_name:
        raise KubeConfigError(f"kubeconfig {path!r}: no current-context and no context given")
    ctx = _named(doc, "contexts", "context", ctx_name, path)
    cluster_name = ctx.get("cluster") or ""
    if not cluster_name:
        raise KubeConfigError(f"kubeconfig {path!r}: context {ctx_name!r} names no cluster")
    cluster = _named(doc, "clusters", "cluster", cluster_name, path)
    user_name = ctx.get("user") or ""
    user = _named(doc, "users", "user", user_name, path) if user_name else {}
    where = f"kubeconfig {path!r}"

    server = _str(cluster, "server", where)
    if not server:
        raise KubeConfigError(f"{where}: cluster {cluster_name!r} has no server")
    if "://" not in server:
        # clientcmd: a server without a scheme is http, as nothing says TLS yet.
        server = f"http://{server}"
    if not server.startswith("https://"):
        # clientcmd reads the CA and the user's credentials only for an https server, so
        # they are never sent in the clear; we say so instead of dropping them silently.
        if (
            user
            or cluster.get("certificate-authority")
            or cluster.get("certificate-authority-data")
        ):
            _log.warning(
                "%s: the server %s is not https, so its CA and user credentials are not used "
                "(as client-go does)",
                where,
                server,
            )
        return KubeConfig(server=server.rstrip("/"))
    insecure = bool(cluster.get("insecure-skip-tls-verify", False))
    ca_data = _data_or_file(cluster, "certificate-authority", base_dir, where)
    if insecure and ca_data is not None:
        raise KubeConfigError(
            f"{where}: specifying a root certificates file with the insecure flag is not allowed"
        )

    if user.get("auth-provider"):
        raise KubeConfigError(
            f"{where}: user {user_name!r} uses auth-provider, which is not supported; "
            "use a token, tokenFile, basic auth, client certificate or exec plugin"
        )
    token = _str(user, "token", where) or None
    token_file = _str(user, "tokenFile", where) or None
    if token_file:
        token_file = str(base_dir / token_file)
    username = _str(user, "username", where) or None
    password = _str(user, "password", where) or None
    if (username or password) and (token or token_file):
        # client-go's transport refuses the combination.
        raise KubeConfigError(
            f"{where}: user {user_name!r}: username/password or bearer token may be set, "
            "but not both"
        )
    cert = _data_or_file(user, "client-certificate", base_dir, where)
    key = _data_or_file(user, "client-key", base_dir, where)
    if (cert is None) != (key is None):
        raise KubeConfigError(
            f"{where}: user {user_name!r} needs both client-certificate and client-key"
        )
    exec_cfg = _exec_config(user.get("exec"), base_dir, where) if user.get("exec") else None
    return KubeConfig(
        server=server.rstrip("/"),
        ca_data=ca_data,
        insecure_skip_tls_verify=insecure,
        token=token,
        token_file=token_file,
        username=username if username or password else None,
        password=password,
        client_cert_data=cert,
        client_key_data=key,
        exec_command=exec_cfg,
        tls_server_name=_str(cluster, "tls-server-name", where) or None,
    )


def _named(doc: dict[str, Any], section: str, key: str, name: str, path: str) -> dict[str, Any]:
    entries = doc.get(section) or []
    if not isinstance(entries, list):
        raise KubeConfigError(f"kubeconfig {path!r}: {section} must be a list")
    for entry in entries:
        if isinstance(entry, dict) and entry.get("name") == name:
            body = entry.get(key) or {}
            if not isinstance(body, dict):
                raise KubeConfigError(f"kubeconfig {path!r}: {key} {name!r} must be a mapping")
            return body
    raise KubeConfigError(f"kubeconfig {path!r}: {key} {name!r} not found")


def _str(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise KubeConfigError(f"{where}: {key} must be a string")
    return value


def _data_or_file(obj: Mapping[str, Any], key: str, base_dir: Path, where: str) -> bytes | None:
    """`<key>-data` (base64, wins as in client-go) or the file `<key>` (relative paths are
    resolved against the kubeconfig's directory)."""
    data = _str(obj, f"{key}-data", where)
    if data:
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise KubeConfigError(f"{where}: {key}-data is not valid base64") from None
    file = _str(obj, key, where)
    if not file:
        return None
    try:
        return (base_dir / file).read_bytes()
    except OSError as err:
        raise KubeConfigError(f"{where}: unable to read {key}: {err}") from None


def _exec_config(raw: object, base_dir: Path, where: str) -> ExecCredentialConfig:
    if not isinstance(raw, dict):
        raise KubeConfigError(f"{where}: exec must be a mapping")
    command = _str(raw, "command", where)
    if not command:
        raise KubeConfigError(f"{where}: exec plugin has no command")
    if os.sep in command or "/" in command:
        # clientcmd resolves a command with a path separator against the kubeconfig's dir.
        command = str(base_dir / command)
    api_version = _str(raw, "apiVersion", where)
    if api_version not in EXEC_API_VERSIONS:
        raise KubeConfigError(
            f"{where}: exec plugin apiVersion {api_version!r} is not supported "
            f"(use one of {', '.join(EXEC_API_VERSIONS)})"
        )
    args = raw.get("args") or []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise KubeConfigError(f"{where}: exec args must be a list of strings")
    env: list[tuple[str, str]] = []
    for item in raw.get("env") or []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise KubeConfigError(f"{where}: exec env entries need a name and a value")
        env.append((item["name"], str(item.get("value", ""))))
    return ExecCredentialConfig(
        command=command,
        api_version=api_version,
        args=tuple(args),
        env=tuple(env),
        provide_cluster_info=bool(raw.get("provideClusterInfo", False)),
    )
