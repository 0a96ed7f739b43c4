"""Where authentication configuration comes from: flags or the ConfigMap, start-up rules."""

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from adapter.auth.delegation import (
    AuthenticationConfig,
    AuthenticationConfigLoader,
    AuthenticationFlags,
    AuthenticationLookupError,
)
from adapter.kube.api import KubeAPIError
from harness.pki import CertificateAuthority

CONFIGMAP = "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication"
FRONT_PROXY = CertificateAuthority("front-proxy-ca")
CLIENT = CertificateAuthority("client-ca")


class ConfigMapAPI:
    def __init__(self, answer: dict[str, Any] | KubeAPIError) -> None:
        self.answer = answer

    async def get(
        self, path: str, params: Mapping[str, str] | None = None, *, accept: str | None = None
    ) -> dict[str, Any]:
        assert path == CONFIGMAP
        if isinstance(self.answer, KubeAPIError):
            raise self.answer
        return self.answer

    async def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def watch(self, path: str, params: Any = None, *, accept: Any = None) -> Any:
        raise NotImplementedError


def configmap(**data: str) -> dict[str, Any]:
    return {"kind": "ConfigMap", "data": data}


def kube_written(front_proxy: CertificateAuthority = FRONT_PROXY) -> dict[str, Any]:
    """What kube-apiserver writes: PEM bundles and JSON-encoded string lists."""
    return configmap(
        **{
            "client-ca-file": CLIENT.cert_pem.decode(),
            "requestheader-client-ca-file": front_proxy.cert_pem.decode(),
            "requestheader-allowed-names": json.dumps(["front-proxy-client"]),
            "requestheader-username-headers": json.dumps(["X-Remote-User"]),
            "requestheader-group-headers": json.dumps(["X-Remote-Group"]),
            "requestheader-extra-headers-prefix": json.dumps(["X-Remote-Extra-"]),
        }
    )


async def test_configmap_is_parsed() -> None:
    loader = AuthenticationConfigLoader(AuthenticationFlags(), ConfigMapAPI(kube_written()))
    config = await loader.load_once()
    assert [c.subject for c in config.client_ca] == [CLIENT.certificate.subject]
    assert config.request_header is not None
    assert config.request_header.allowed_names == ("front-proxy-client",)
    assert config.request_header.username_headers == ("X-Remote-User",)
    assert config.request_header.extra_prefixes == ("X-Remote-Extra-",)
    assert len(config.ca_pems) == 2


async def test_missing_configmap_is_tolerated_at_start_up() -> None:
    api = ConfigMapAPI(KubeAPIError(404, "NotFound", "configmaps not found"))
    config = await AuthenticationConfigLoader(AuthenticationFlags(), api).load_once()
    assert config == AuthenticationConfig()


async def test_forbidden_configmap_is_fatal_unless_tolerated() -> None:
    api = ConfigMapAPI(KubeAPIError(403, "Forbidden", "configmaps is forbidden"))
    with pytest.raises(
        AuthenticationLookupError, match="extension-apiserver-authentication-reader"
    ):
        await AuthenticationConfigLoader(AuthenticationFlags(), api).load_once()
    tolerant = AuthenticationFlags(tolerate_lookup_failure=True)
    assert await AuthenticationConfigLoader(tolerant, api).load_once() == AuthenticationConfig()


async def test_flags_win_and_skip_lookup(tmp_path: Path) -> None:
    ca_file = FRONT_PROXY.write(tmp_path, "front-proxy")
    flags = AuthenticationFlags(
        requestheader_client_ca_file=str(ca_file),
        requestheader_allowed_names=("aggregator",),
        skip_lookup=True,
    )
    api = ConfigMapAPI(KubeAPIError(500, "InternalError", "must not be asked"))
    config = await AuthenticationConfigLoader(flags, api).load_once()
    assert config.request_header is not None
    assert config.request_header.allowed_names == ("aggregator",)
    assert config.request_header.username_headers == ("x-remote-user",)
    assert config.client_ca == ()


async def test_rotation_and_bad_updates_keep_the_last_good_config() -> None:
    api = ConfigMapAPI(kube_written())
    changes: list[AuthenticationConfig] = []
    loader = AuthenticationConfigLoader(AuthenticationFlags(), api, on_change=changes.append)
    await loader.load_once()
    task = asyncio.create_task(loader.run(interval=0.01))
    try:
        rotated = CertificateAuthority("front-proxy-ca-2")
        api.answer = kube_written(rotated)
        for _ in range(200):
            if len(changes) == 2:
                break
            await asyncio.sleep(0.01)
        assert loader.current.request_header is not None
        assert loader.current.request_header.ca_certs[0].subject == rotated.certificate.subject
        api.answer = configmap(**{"requestheader-client-ca-file": "not a certificate"})
        await asyncio.sleep(0.1)
        assert loader.current.request_header.ca_certs[0].subject == rotated.certificate.subject
        api.answer = KubeAPIError(0, "ConnectionError", "apiserver down")
        await asyncio.sleep(0.1)
        assert loader.current is changes[-1]
    finally:
        task.cancel()
