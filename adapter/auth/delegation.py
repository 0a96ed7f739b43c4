"""Where delegated authentication's configuration comes from, and keeping it current.

As k8s.io/apiserver's DelegatingAuthenticationOptions: the client CA and the request-header
(front-proxy) settings come from flags when given; otherwise, unless
`--authentication-skip-lookup`, from the ConfigMap `kube-system/extension-apiserver-
authentication` that kube-apiserver writes (PEM CA bundles and JSON-encoded string lists).
The ConfigMap and the CA files are re-read every minute, so CA rotation needs no restart.
At start-up a missing ConfigMap is tolerated; a forbidden one is fatal unless
`--authentication-tolerate-lookup-failure`.
"""

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from adapter.auth.authenticators import RequestHeaderConfig
from adapter.kube.api import KubeAPI, KubeAPIError

__all__ = [
    "AUTHENTICATION_CONFIGMAP",
    "AuthenticationConfig",
    "AuthenticationConfigLoader",
    "AuthenticationFlags",
    "AuthenticationLookupError",
]

log = logging.getLogger(__name__)

AUTHENTICATION_CONFIGMAP = ("kube-system", "extension-apiserver-authentication")


@dataclass(frozen=True, slots=True)
class AuthenticationFlags:
    client_ca_file: str = ""
    requestheader_client_ca_file: str = ""
    requestheader_username_headers: tuple[str, ...] = ("x-remote-user",)
    requestheader_group_headers: tuple[str, ...] = ("x-remote-group",)
    requestheader_extra_headers_prefix: tuple[str, ...] = ("x-remote-extra-",)
    requestheader_allowed_names: tuple[str, ...] = ()
    skip_lookup: bool = False
    tolerate_lookup_failure: bool = False


@dataclass(frozen=True, slots=True)
class AuthenticationConfig:
    client_ca: tuple[x509.Certificate, ...] = ()
    request_header: RequestHeaderConfig | None = None
    # The PEM bundles as loaded, for the TLS listener's trust store.
    ca_pems: tuple[bytes, ...] = field(default=(), compare=False)


class AuthenticationLookupError(RuntimeError):
    """The ConfigMap could not be read at start-up (and failures are not tolerated)."""


def _certificates(pem: bytes, what: str) -> tuple[x509.Certificate, ...]:
    if not pem.strip():
        return ()
    try:
        return tuple(x509.load_pem_x509_certificates(pem))
    except ValueError as exc:
        raise ValueError(f"{what}: not a PEM certificate bundle ({exc})") from None


def _strings(data: dict[str, str], key: str) -> tuple[str, ...] | None:
    """kube-apiserver writes lists as JSON arrays; an empty value means none."""
    raw = data.get(key)
    if raw is None or raw == "":
        return None
    values = json.loads(raw)
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError(f"{key}: expected a JSON array of strings")
    return tuple(values)


class AuthenticationConfigLoader:
    def __init__(
        self,
        flags: AuthenticationFlags,
        api: KubeAPI | None,
        *,
        on_change: Callable[[AuthenticationConfig], None] | None = None,
    ) -> None:
        self._flags = flags
        self._api = api if not flags.skip_lookup else None
        self._on_change = on_change
        self.current = AuthenticationConfig()

    def _from_flags_files(self) -> tuple[bytes, bytes]:
        def read(path: str) -> bytes:
            return Path(path).read_bytes() if path else b""

        return read(self._flags.client_ca_file), read(self._flags.requestheader_client_ca_file)

    async def _configmap_data(self, *, at_start: bool) -> dict[str, str] | None:
        if self._api is None:
            return None
        namespace, name = AUTHENTICATION_CONFIGMAP
        try:
            body = await self._api.get(f"/api/v1/namespaces/{namespace}/configmaps/{name}")
        except KubeAPIError as exc:
            if exc.status == 404:
                if at_start:
                    log.warning(
                        "ConfigMap %s/%s not found: requests through the aggregator will be "
                        "anonymous until it exists",
                        namespace,
                        name,
                    )
                return {}
            if at_start and not self._flags.tolerate_lookup_failure:
                hint = (
                    " Usually fixed by 'kubectl create rolebinding -n kube-system ROLEBINDING_NAME "
                    "--role=extension-apiserver-authentication-reader "
                    "--serviceaccount=YOUR_NS:YOUR_SA'"
                    if exc.status == 403
                    else ""
                )
                raise AuthenticationLookupError(
                    f"unable to load configmap based request-header-client-ca-file: {exc}.{hint}"
                ) from None
            log.warning("unable to read ConfigMap %s/%s: %s", namespace, name, exc)
            if at_start:
                log.warning(
                    "Continuing without authentication configuration. This may treat all "
                    "requests as anonymous."
                )
            return None
        data: dict[str, str] = body.get("data") or {}
        return data

    def _build(self, data: dict[str, str] | None) -> AuthenticationConfig:
        flags = self._flags
        client_pem, header_pem = self._from_flags_files()
        cm = data or {}
        if not client_pem:
            client_pem = cm.get("client-ca-file", "").encode()
        request_header = None
        if flags.requestheader_client_ca_file:
            request_header = RequestHeaderConfig(
                ca_certs=_certificates(header_pem, "--requestheader-client-ca-file"),
                allowed_names=flags.requestheader_allowed_names,
                username_headers=flags.requestheader_username_headers,
                group_headers=flags.requestheader_group_headers,
                extra_prefixes=flags.requestheader_extra_headers_prefix,
            )
        elif cm.get("requestheader-client-ca-file"):
            header_pem = cm["requestheader-client-ca-file"].encode()
            request_header = RequestHeaderConfig(
                ca_certs=_certificates(header_pem, "requestheader-client-ca-file"),
                allowed_names=_strings(cm, "requestheader-allowed-names") or (),
                username_headers=_strings(cm, "requestheader-username-headers") or (),
                group_headers=_strings(cm, "requestheader-group-headers") or (),
                extra_prefixes=_strings(cm, "requestheader-extra-headers-prefix") or (),
                uid_headers=_strings(cm, "requestheader-uid-headers") or (),
            )
        return AuthenticationConfig(
            client_ca=_certificates(client_pem, "client CA"),
            request_header=request_header,
            ca_pems=tuple(p for p in (client_pem, header_pem) if p.strip()),
        )

    def _swap(self, config: AuthenticationConfig) -> None:
        if config == self.current:
            return
        self.current = config
        log.info(
            "authentication configuration: %d client CA certificates, request-header %s",
            len(config.client_ca),
            "configured" if config.request_header else "not configured",
        )
        if self._on_change is not None:
            self._on_change(config)

    async def load_once(self) -> AuthenticationConfig:
        """The start-up load; raises AuthenticationLookupError or ValueError (bad data)."""
        self._swap(self._build(await self._configmap_data(at_start=True)))
        return self.current

    async def run(self, interval: float = 60.0) -> None:
        """Re-read the ConfigMap and the CA files every `interval`; a bad update is logged
        and the last good configuration kept."""
        while True:
            await asyncio.sleep(interval)
            try:
                data = await self._configmap_data(at_start=False)
                if data is not None or self._api is None:
                    self._swap(self._build(data))
            except (OSError, ValueError) as exc:
                log.error("invalid authentication configuration, keeping the previous one: %s", exc)
