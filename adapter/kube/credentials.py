"""What a client presents to a server, from a kubeconfig: client-go's `rest.TransportFor`.

The TLS context (CA data or the system store, insecure-skip-tls-verify, a client certificate)
and the `Authorization` header (a bearer token, a token file re-read when it rotates, basic
auth, or an exec credential plugin). Used by the Kubernetes clients and, for
`--prometheus-auth-config` and `--prometheus-auth-incluster`, by the Prometheus client.

As in client-go, an exec plugin is only run when the kubeconfig gives no token, basic auth
or client certificate, its credential is kept until it expires, and a 401 makes the next
request fetch a new one.
"""

import asyncio
import base64
import contextlib
import datetime
import os
import ssl
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import encode_basic_auth

from adapter.kube.api import KubeAPIError
from adapter.kube.config import KubeConfig, KubeConfigError
from adapter.redaction import basic_auth_forms, secret_forms
from adapter.token_file import TokenFile, TokenFileError

__all__ = ["ClientCredentials", "build_ssl_context"]

_EXEC_TIMEOUT_SECONDS = 60.0
# Refresh exec credentials a little early so a request never carries a token that expires
# while in flight.
_EXEC_EXPIRY_MARGIN = 10.0


@dataclass(frozen=True)
class _ExecCredential:
    token: str | None
    cert: bytes | None
    key: bytes | None
    expires: float | None  # time.time() seconds


def build_ssl_context(
    config: KubeConfig, cert: bytes | None = None, key: bytes | None = None
) -> ssl.SSLContext:
    """The kubeconfig's TLS settings: insecure, its CA data only, or the system store."""
    if config.insecure_skip_tls_verify:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif config.ca_data:
        try:
            # Non-ASCII bytes can only sit in comments between PEM blocks; cadata must be ASCII.
            ctx = ssl.create_default_context(cadata=config.ca_data.decode("ascii", errors="ignore"))
        except (ssl.SSLError, ValueError) as err:
            raise KubeConfigError(f"no certificates found in the CA data: {err}") from None
    else:
        ctx = ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert is not None and key is not None:
        _load_cert_chain(ctx, cert, key)
    return ctx


def _no_password() -> bytes:
    raise KubeConfigError("the client key is encrypted; a passphrase is not supported")


def _load_cert_chain(ctx: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    """ssl has no in-memory API: write private (0600) temp files, load, delete at once."""
    paths: list[str] = []
    try:
        for data in (cert, key):
            fd, name = tempfile.mkstemp(prefix="kube-client-", suffix=".pem")
            paths.append(name)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        ctx.load_cert_chain(paths[0], paths[1], password=_no_password)
    except (OSError, ssl.SSLError) as err:
        raise KubeConfigError(f"failed to load the client certificate and key: {err}") from None
    finally:
        for name in paths:
            with contextlib.suppress(OSError):
                os.unlink(name)


class ClientCredentials:
    """The TLS context and `Authorization` header a kubeconfig (or in-cluster config) gives.

    The constructor reads what client-go reads at start-up (raising KubeConfigError): the
    token file, the CA and the client certificate. `authorization()` and `ssl_context` are
    cheap; when `needs_refresh()` says so, `await refresh()` runs the exec plugin first.
    """

    __slots__ = (
        "_basic",
        "_config",
        "_exec_cred",
        "_exec_lock",
        "_exec_ssl",
        "_ssl",
        "_token_file",
        "uses_exec",
    )

    def __init__(self, config: KubeConfig) -> None:
        self._config = config
        try:
            self._token_file = (
                TokenFile(config.token_file, what="the token file") if config.token_file else None
            )
        except TokenFileError as exc:
            raise KubeConfigError(str(exc)) from None
        self._basic = (
            encode_basic_auth(config.username, config.password or "")
            if config.username is not None
            else None
        )
        self._ssl = build_ssl_context(config, config.client_cert_data, config.client_key_data)
        # client-go runs the plugin only when nothing else authenticates the client.
        self.uses_exec = config.exec_command is not None and not (
            config.token or config.token_file or self._basic or config.client_cert_data is not None
        )
        self._exec_cred: _ExecCredential | None = None
        self._exec_ssl: ssl.SSLContext | None = None  # with the exec plugin's certificate
        self._exec_lock: asyncio.Lock | None = None

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """The context for new connections; a new object after an exec plugin has issued a
        client certificate, so that pools keyed by context do not reuse old connections."""
        return self._exec_ssl if self._exec_ssl is not None else self._ssl

    @property
    def tls_server_name(self) -> str | None:
        return self._config.tls_server_name

    def authorization(self) -> str | None:
        """The `Authorization` header value to send now, or None."""
        token = self._config.token or ""
        if self._token_file is not None:
            token = self._token_file.current() or token
        if not token and self._exec_cred is not None:
            token = self._exec_cred.token or ""
        if token:
            return f"Bearer {token}"
        return self._basic

    def secrets(self) -> tuple[str, ...]:
        """Every credential that must never reach a log or an answer, in every form it may
        take there (adapter.redaction)."""
        tokens = [self._config.token or ""]
        if self._token_file is not None:
            tokens.append(self._token_file.current())
        if self._exec_cred is not None:
            tokens.append(self._exec_cred.token or "")
        forms = {form for token in tokens for form in secret_forms(token)}
        if self._config.username is not None:
            forms |= basic_auth_forms(self._config.username, self._config.password or "")
        return tuple(forms)

    def needs_refresh(self) -> bool:
        """True when the exec plugin must run before the next request."""
        cred = self._exec_cred
        return self.uses_exec and (cred is None or _expired(cred))

    def invalidate(self) -> None:
        """The server answered 401: fetch a new exec credential for the next request."""
        if self.uses_exec:
            self._exec_cred = None

    async def refresh(self, *, force: bool = False) -> None:
        """Run the exec plugin (once for concurrent callers) unless its credential is fresh;
        `force` replaces a credential the server has just refused."""
        if not self.uses_exec:
            return
        if self._exec_lock is None:
            self._exec_lock = asyncio.Lock()
        stale = self._exec_cred
        async with self._exec_lock:
            cred = self._exec_cred
            # A concurrent caller may have refreshed while we waited for the lock.
            fresh = cred is not None and (cred is not stale or not force)
            if fresh and cred is not None and not _expired(cred):
                return
            cred = await self._run_exec_plugin()
            if cred.cert is not None and cred.key is not None:
                try:
                    self._exec_ssl = build_ssl_context(self._config, cred.cert, cred.key)
                except KubeConfigError as err:
                    raise KubeAPIError(0, "ExecPluginError", str(err)) from None
            self._exec_cred = cred

    async def _run_exec_plugin(self) -> _ExecCredential:
        exec_cfg = self._config.exec_command
        assert exec_cfg is not None
        spec: dict[str, Any] = {"interactive": False}
        if exec_cfg.provide_cluster_info:
            cluster: dict[str, Any] = {"server": self._config.server}
            if self._config.ca_data:
                cluster["certificate-authority-data"] = base64.b64encode(
                    self._config.ca_data
                ).decode()
            if self._config.insecure_skip_tls_verify:
                cluster["insecure-skip-tls-verify"] = True
            if self._config.tls_server_name:
                cluster["tls-server-name"] = self._config.tls_server_name
            spec["cluster"] = cluster
        info = {"apiVersion": exec_cfg.api_version, "kind": "ExecCredential", "spec": spec}
        env = {**os.environ, **dict(exec_cfg.env)}
        env["KUBERNETES_EXEC_INFO"] = orjson.dumps(info).decode()
        what = f"exec plugin {exec_cfg.command!r}"
        try:
            proc = await asyncio.create_subprocess_exec(
                exec_cfg.command,
                *exec_cfg.args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
            )
        except OSError as err:
            raise KubeAPIError(0, "ExecPluginError", f"{what}: {err}") from None
        try:
            out, err_out = await asyncio.wait_for(proc.communicate(), _EXEC_TIMEOUT_SECONDS)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise KubeAPIError(
                0, "ExecPluginError", f"{what} did not finish in {_EXEC_TIMEOUT_SECONDS:g}s"
            ) from None
        if err_out:
            sys.stderr.write(err_out.decode("utf-8", errors="replace"))  # as client-go does
        if proc.returncode != 0:
            raise KubeAPIError(0, "ExecPluginError", f"{what} exited with {proc.returncode}")
        return _parse_exec_output(out, exec_cfg.api_version, what)


def _expired(cred: _ExecCredential) -> bool:
    return cred.expires is not None and time.time() >= cred.expires - _EXEC_EXPIRY_MARGIN


def _parse_rfc3339(value: str) -> float:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _parse_exec_output(out: bytes, api_version: str, what: str) -> _ExecCredential:
    def bad(problem: str) -> KubeAPIError:
        return KubeAPIError(0, "ExecPluginError", f"{what}: {problem}")

    try:
        doc = orjson.loads(out)
    except orjson.JSONDecodeError:
        raise bad("the output is not JSON") from None
    if not isinstance(doc, dict) or doc.get("kind") != "ExecCredential":
        raise bad("the output is not an ExecCredential")
    if doc.get("apiVersion") != api_version:
        raise bad(f"apiVersion {doc.get('apiVersion')!r} does not match {api_version!r}")
    status = doc.get("status")
    if not isinstance(status, dict):
        raise bad("the ExecCredential has no status")
    token = status.get("token") or None
    cert_s, key_s = status.get("clientCertificateData"), status.get("clientKeyData")
    if bool(cert_s) != bool(key_s):
        raise bad("clientCertificateData and clientKeyData must be given together")
    if not token and not cert_s:
        raise bad("the ExecCredential holds neither a token nor a client certificate")
    expires: float | None = None
    if status.get("expirationTimestamp"):
        try:
            expires = _parse_rfc3339(str(status["expirationTimestamp"]))
        except ValueError:
            raise bad("expirationTimestamp is not an RFC 3339 time") from None
    return _ExecCredential(
        token=str(token) if token else None,
        cert=str(cert_s).encode() if cert_s else None,
        key=str(key_s).encode() if key_s else None,
        expires=expires,
    )
