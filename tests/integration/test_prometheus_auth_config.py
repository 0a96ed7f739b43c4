"""`--prometheus-auth-config` as OpenShift uses it: a real Prometheus behind an HTTPS front that
admits only one bearer token (as kube-rbac-proxy does), reached with a kubeconfig holding
that front's CA and a rotating token file."""

import asyncio
import os
import ssl
from pathlib import Path
from typing import Any

import aiohttp

from harness.adapter import running_adapter
from harness.exporter import demo_dataset
from harness.kubectl import write_kubeconfig
from harness.pki import CertificateAuthority
from harness.recording_proxy import running_recording_proxy
from tests.integration.conftest import DEMO_CONFIG, scraping_prometheus

PODS = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/demo/pods/*/http_requests_per_second"


def _front_tls(ca: CertificateAuthority, directory: Path) -> ssl.SSLContext:
    cert, key = ca.issue_server(("127.0.0.1",)).write(directory, "front")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def _get(adapter: Any, path: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(adapter.url + path, ssl=adapter.ssl_context()) as response,
    ):
        return response.status, await response.json()


async def test_every_request_carries_the_kubeconfig_token_and_verifies_its_ca(
    tmp_path: Path,
) -> None:
    ca = CertificateAuthority("openshift-service-ca")
    ca_file = ca.write(tmp_path, "service-ca")
    token = tmp_path / "token"
    token.write_text("sa-token-1\n")
    kubeconfig = write_kubeconfig(
        tmp_path / "prometheus-config.yaml",
        "https://prometheus-k8s.openshift-monitoring.svc:9091",  # unused: the URL flag wins
        ca_file=str(ca_file),
        user={"tokenFile": str(token)},
    )
    async with (
        scraping_prometheus(demo_dataset()) as prometheus,
        running_recording_proxy(
            prometheus.url,
            ssl_context=_front_tls(ca, tmp_path),
            authorization="Bearer sa-token-1",
        ) as front,
        running_adapter(
            DEMO_CONFIG, front.url, [f"--prometheus-auth-config={kubeconfig}"]
        ) as adapter,
    ):
        status, body = await _get(adapter, PODS)
        assert status == 200, body
        assert {i["describedObject"]["name"]: i["value"] for i in body["items"]} == {
            "web-0": "500m",
            "web-1": "1",
            "web-2": "2",
        }
        # The kubelet rotates the projected token; the front accepts only the new one.
        new = tmp_path / "token.new"
        new.write_text("sa-token-2\n")
        os.replace(new, token)
        front.authorization = "Bearer sa-token-2"
        status, body = await _get(adapter, PODS)
        assert status == 200, body

        assert front.requests, "the adapter never reached Prometheus"
        assert {r.status for r in front.requests} == {200}
        endpoints = {r.path for r in front.requests}
        assert {"/api/v1/query"} <= endpoints and len(endpoints) >= 2  # discovery too
        assert "sa-token" not in adapter.log()


async def test_without_the_kubeconfig_the_front_refuses(tmp_path: Path) -> None:
    """The control: the same adapter without the flag is refused, so the test above proves
    the kubeconfig's effect."""
    ca = CertificateAuthority("openshift-service-ca")
    async with (
        running_recording_proxy(
            "http://127.0.0.1:9",
            ssl_context=_front_tls(ca, tmp_path),
            authorization="Bearer sa-token-1",
        ) as front,
        running_adapter(
            DEMO_CONFIG,
            front.url,
            [f"--prometheus-ca-file={ca.write(tmp_path, 'ca')}"],
            wait_ready=False,
        ) as adapter,
    ):
        async with asyncio.timeout(30):
            while not front.requests:  # the first relist
                await asyncio.sleep(0.05)
        status, _ = await _get(adapter, PODS)
        assert status != 200
        assert {r.status for r in front.requests} == {401}
