"""kube-apiserver's aggregation layer in miniature, for tests that need a whole cluster API:
`kubectl top node` reads node metrics from metrics.k8s.io *and* the nodes themselves from the
core API on the same server.

Requests for the adapter's API groups go to the adapter; everything else goes to the fake
kube-apiserver; `/apis` merges both group lists (as plain legacy discovery, which clients
accept when they asked for aggregated discovery).
"""

import contextlib
import json
import ssl
import tempfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from harness.fake_kube_apiserver import FakeKubeAPIServer
from harness.pki import CertificateAuthority

__all__ = ["Aggregator", "running_aggregator"]

_HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
    "transfer-encoding", "upgrade", "host", "content-length",
}  # fmt: skip


class Aggregator:
    def __init__(
        self,
        kube: FakeKubeAPIServer,
        adapter_url: str,
        adapter_ssl: ssl.SSLContext,
        groups: Sequence[str],
    ) -> None:
        self._kube = kube
        self._adapter_url = adapter_url
        self._adapter_ssl = adapter_ssl
        self._groups = tuple(groups)
        self._dir = tempfile.TemporaryDirectory(prefix="aggregator-")
        self.ca = CertificateAuthority("aggregator-ca")
        self._cert, self._key = self.ca.issue_server().write(self._dir.name, "aggregator")
        self.ca_file = self.ca.write(self._dir.name, "ca")
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def kubeconfig(self, path: Path) -> Path:
        """A kubeconfig for this endpoint with the fake kube-apiserver's token."""
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters: [{{name: c, cluster: {{server: '{self.url}', "
            f"certificate-authority: '{self.ca_file}'}}}}]\n"
            f"users: [{{name: u, user: {{token: '{self._kube.token}'}}}}]\n"
            "contexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n"
        )
        return path

    def _target(self, path: str) -> tuple[str, ssl.SSLContext]:
        if any(path.startswith(f"/apis/{group}") for group in self._groups):
            return self._adapter_url, self._adapter_ssl
        return self._kube.url, self._kube.ssl_context()

    async def _fetch(
        self,
        request: web.Request,
        base: str,
        context: ssl.SSLContext,
        *,
        accept: str | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        if accept is not None:
            headers["Accept"] = accept
        body = await request.read()
        url = base + request.path_qs
        async with self._session.request(
            request.method, url, headers=headers, data=body, ssl=context
        ) as response:
            answer = await response.read()
            kept = {k: v for k, v in response.headers.items() if k.lower() not in _HOP_BY_HOP}
            return response.status, kept, answer

    async def _apis(self, request: web.Request) -> web.Response:
        merged: list[Any] = []
        backends = (
            (self._kube.url, self._kube.ssl_context()),
            (self._adapter_url, self._adapter_ssl),
        )
        for base, context in backends:
            status, _, body = await self._fetch(request, base, context, accept="application/json")
            if status == 200:
                names = {g["name"] for g in merged}
                merged += [g for g in json.loads(body).get("groups", []) if g["name"] not in names]
        return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": merged})

    def _unavailable(self, path: str) -> bool:
        """Whether the path's APIService exists in the fake kube-apiserver and is not
        Available: kube-aggregator then answers a plain-text 503 without asking the backend."""
        parts = path.strip("/").split("/")
        if len(parts) < 3 or parts[0] != "apis" or parts[1] not in self._groups:
            return False
        service = self._kube.get_object(
            "apiregistration.k8s.io/v1/apiservices", f"{parts[2]}.{parts[1]}"
        )
        if service is None:
            return False
        conditions = (service.get("status") or {}).get("conditions") or []
        return not any(
            c.get("type") == "Available" and c.get("status") == "True" for c in conditions
        )

    async def _proxy(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/apis":
            return await self._apis(request)
        if self._unavailable(request.path):
            return web.Response(status=503, text="service unavailable\n")
        base, context = self._target(request.path)
        status, headers, body = await self._fetch(request, base, context)
        return web.Response(status=status, headers=headers, body=body)

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._proxy)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self._cert, self._key)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._dir.cleanup()


@contextlib.asynccontextmanager
async def running_aggregator(
    kube: FakeKubeAPIServer, adapter_url: str, adapter_ssl: ssl.SSLContext, groups: Sequence[str]
) -> AsyncIterator[Aggregator]:
    aggregator = Aggregator(kube, adapter_url, adapter_ssl, groups)
    try:
        await aggregator.start()
        yield aggregator
    finally:
        await aggregator.stop()
