"""The adapter in cluster mode over real HTTPS: a real Prometheus, the fake kube-apiserver for
discovery, objects, the authentication ConfigMap, TokenReview and SubjectAccessReview, and
clients presenting front-proxy certificates, client certificates and bearer tokens."""

import asyncio
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from harness.adapter import AdapterProcess
from harness.exporter import demo_dataset, running_exporter
from harness.fake_kube_apiserver import FakeKubeAPIServer, UserInfo, running_fake_kube_apiserver
from harness.pki import CertificateAuthority, KeyPair
from harness.prometheus import PrometheusProcess
from tests.integration.conftest import DEMO_CONFIG, wait_for_rates

pytestmark = pytest.mark.asyncio(loop_scope="module")

HPA = "system:serviceaccount:kube-system:horizontal-pod-autoscaler"
HPA2 = "system:serviceaccount:kube-system:another-autoscaler"
PODS_ALL = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/demo/pods/*/http_requests_per_second"
DISCOVERY = "/apis/custom.metrics.k8s.io/v1beta2"


@dataclass
class Cluster:
    kube: FakeKubeAPIServer
    adapter: AdapterProcess
    front_proxy_ca: CertificateAuthority
    client_ca: CertificateAuthority
    workdir: Path

    def client_ssl(self, pair: KeyPair | None = None) -> ssl.SSLContext:
        context = self.adapter.ssl_context()
        if pair is not None:
            cert, key = pair.write(self.workdir, f"client-{time.monotonic_ns()}")
            context.load_cert_chain(cert, key)
        return context

    async def get(
        self, path: str, *, cert: KeyPair | None = None, headers: dict[str, Any] | None = None
    ) -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                self.adapter.url + path, ssl=self.client_ssl(cert), headers=headers
            ) as response,
        ):
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.text()

    def aggregator_cert(self) -> KeyPair:
        return self.front_proxy_ca.issue_client("front-proxy-client")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(tmp_path_factory: Any) -> AsyncIterator[Cluster]:
    workdir = tmp_path_factory.mktemp("cluster")
    front_proxy_ca = CertificateAuthority("front-proxy-ca")
    client_ca = CertificateAuthority("client-ca")
    async with running_exporter(demo_dataset()) as exporter, running_fake_kube_apiserver() as kube:
        kube.add_object("v1/namespaces", {"metadata": {"name": "demo"}})

        def pod(name: str, app: str, phase: str = "Running") -> dict[str, Any]:
            meta = {"name": name, "namespace": "demo", "labels": {"app": app}}
            return {"metadata": meta, "status": {"phase": phase}}

        for i in range(3):
            kube.add_object("v1/pods", pod(f"web-{i}", "web"))
        kube.add_object("v1/pods", pod("db-0", "db"))
        kube.add_object("v1/pods", pod("done-0", "web", phase="Succeeded"))
        for node in ("node-a", "node-b", "node-c"):
            kube.add_object("v1/nodes", {"metadata": {"name": node, "labels": {"pool": "demo"}}})
        kube.set_authentication_configmap(
            client_ca=client_ca.cert_pem.decode(),
            requestheader_ca=front_proxy_ca.cert_pem.decode(),
            allowed_names=["front-proxy-client"],
        )
        kube.tokens["hpa-token"] = UserInfo(HPA, groups=("system:serviceaccounts",))
        kube.tokens["bob-token"] = UserInfo("bob")
        kube.tokens["hpa2-token"] = UserInfo(HPA2)
        for user in (HPA, HPA2):
            kube.allow(user=user, group_name=["custom.metrics.k8s.io", "external.metrics.k8s.io"])
        kube.allow(group="system:authenticated", non_resource_path="/apis*", verb="get")
        kubeconfig = kube.kubeconfig(workdir / "kubeconfig")
        prometheus = PrometheusProcess([exporter.target])
        flags = [
            f"--lister-kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--authentication-config-refresh-interval=0.2s",
        ]
        adapter = AdapterProcess(DEMO_CONFIG, prometheus.url, flags, no_cluster=False)
        try:
            await prometheus.start()
            await wait_for_rates(prometheus, 3)
            await adapter.start()
            yield Cluster(kube, adapter, front_proxy_ca, client_ca, workdir)
        finally:
            await adapter.close()
            await prometheus.close()


async def test_aggregator_calls_are_answered(cluster: Cluster) -> None:
    sar = cluster.kube.count("POST", "/apis/authorization.k8s.io")
    status, body = await cluster.get(
        DISCOVERY,
        cert=cluster.aggregator_cert(),
        headers={"X-Remote-User": "system:kube-aggregator", "X-Remote-Group": "system:masters"},
    )
    assert status == 200 and body["kind"] == "APIResourceList"
    assert cluster.kube.count("POST", "/apis/authorization.k8s.io") == sar  # system:masters
    # The discovery fallback: the aggregator's user with no group, authorized by SAR.
    status, body = await cluster.get(
        DISCOVERY,
        cert=cluster.aggregator_cert(),
        headers={"X-Remote-User": "system:kube-aggregator"},
    )
    assert status == 200


async def test_proxied_hpa_request_reads_pods_of_the_cluster(cluster: Cluster) -> None:
    headers = {"X-Remote-User": HPA, "X-Remote-Group": "system:serviceaccounts"}
    status, body = await cluster.get(
        f"{PODS_ALL}?labelSelector=app%3Dweb", cert=cluster.aggregator_cert(), headers=headers
    )
    assert status == 200, body
    assert {i["describedObject"]["name"]: i["value"] for i in body["items"]} == {
        "web-0": "500m",
        "web-1": "1",
        "web-2": "2",
    }


@pytest.mark.parametrize(
    "who", ["no-certificate", "client-ca-certificate", "wrong-cn", "expired", "unknown-ca"]
)
async def test_spoofed_identity_headers_are_never_trusted(cluster: Cluster, who: str) -> None:
    certs = {
        "no-certificate": None,
        "client-ca-certificate": cluster.client_ca.issue_client("alice"),
        "wrong-cn": cluster.front_proxy_ca.issue_client("not-the-front-proxy"),
        "expired": cluster.front_proxy_ca.issue_expired_client("front-proxy-client"),
        "unknown-ca": CertificateAuthority("evil").issue_client("front-proxy-client"),
    }
    try:
        status, body = await cluster.get(
            PODS_ALL,
            cert=certs[who],
            headers={"X-Remote-User": "admin", "X-Remote-Group": "system:masters"},
        )
    except aiohttp.ClientError:
        return  # the TLS handshake refused the certificate: not authenticated at all
    assert status in (401, 403), (status, body)
    assert "admin" not in str(body)
    if who == "client-ca-certificate":
        assert status == 403 and 'User "alice"' in body["message"]
    if who == "no-certificate":
        assert status == 403 and 'User "system:anonymous"' in body["message"]


async def test_bearer_tokens_with_review_caches(cluster: Cluster) -> None:
    kube = cluster.kube
    reviews = kube.count("POST", "/apis/authentication.k8s.io")
    sars = kube.count("POST", "/apis/authorization.k8s.io")
    for _ in range(5):
        status, body = await cluster.get(PODS_ALL, headers={"Authorization": "Bearer hpa2-token"})
        assert status == 200, body
    assert kube.count("POST", "/apis/authentication.k8s.io") == reviews + 1
    assert kube.count("POST", "/apis/authorization.k8s.io") == sars + 1
    status, body = await cluster.get(PODS_ALL, headers={"Authorization": "Bearer bob-token"})
    assert status == 403
    assert body["message"].startswith(
        'pods.custom.metrics.k8s.io "*" is forbidden: User "bob" cannot get resource "pods/http_requests_per_second" in API group "custom.metrics.k8s.io" in the namespace "demo"'
    )
    status, _ = await cluster.get(PODS_ALL, headers={"Authorization": "Bearer wrong-token"})
    assert status == 401


async def test_review_endpoints_down(cluster: Cluster) -> None:
    kube = cluster.kube
    kube.tokens["carol-token"] = UserInfo("carol")
    kube.fail("/apis/authentication.k8s.io", 500)
    try:
        started = time.monotonic()
        status, _ = await cluster.get(PODS_ALL, headers={"Authorization": "Bearer carol-token"})
        assert status == 401 and time.monotonic() - started < 5
    finally:
        kube.heal()
    kube.fail("/apis/authorization.k8s.io", 500)
    try:
        started = time.monotonic()
        headers = {"X-Remote-User": "dave"}
        status, body = await cluster.get(PODS_ALL, cert=cluster.aggregator_cert(), headers=headers)
        assert status == 500 and time.monotonic() - started < 5
        assert body.startswith("Internal Server Error:")
    finally:
        kube.heal()


def list_calls(kube: FakeKubeAPIServer) -> int:
    """LIST (not WATCH) requests for pods."""
    return sum(
        1
        for r in kube.requests
        if r.method == "GET" and "/pods" in r.path and r.query.get("watch") not in ("1", "true")
    )


async def test_watch_cache_serves_pods_without_list_calls(cluster: Cluster) -> None:
    kube = cluster.kube
    headers = {"Authorization": "Bearer hpa-token"}
    assert (await cluster.get(f"{PODS_ALL}?labelSelector=app%3Dweb", headers=headers))[0] == 200
    lists = list_calls(kube)
    for _ in range(100):
        status, _ = await cluster.get(f"{PODS_ALL}?labelSelector=app%3Dweb", headers=headers)
        assert status == 200
    assert list_calls(kube) == lists
    # A relabelled pod drops out within a second.
    kube.set_labels("v1/pods", "web-2", {"app": "canary"}, namespace="demo")
    deadline = time.monotonic() + 1.0
    names: set[str] = set()
    while time.monotonic() < deadline:
        _, body = await cluster.get(f"{PODS_ALL}?labelSelector=app%3Dweb", headers=headers)
        names = {i["describedObject"]["name"] for i in body["items"]}
        if names == {"web-0", "web-1"}:
            break
        await asyncio.sleep(0.02)
    assert names == {"web-0", "web-1"}
    kube.set_labels("v1/pods", "web-2", {"app": "web"}, namespace="demo")


async def test_request_header_ca_rotation_without_restart(cluster: Cluster) -> None:
    new_ca = CertificateAuthority("front-proxy-ca-2")
    cluster.kube.set_authentication_configmap(
        client_ca=cluster.client_ca.cert_pem.decode(),
        requestheader_ca=new_ca.cert_pem.decode(),
        allowed_names=["front-proxy-client"],
    )
    headers = {"X-Remote-User": "system:kube-aggregator", "X-Remote-Group": "system:masters"}
    new_cert = new_ca.issue_client("front-proxy-client")
    deadline = time.monotonic() + 5
    status = 0
    while time.monotonic() < deadline:
        try:
            status, _ = await cluster.get(DISCOVERY, cert=new_cert, headers=headers)
        except aiohttp.ClientError:
            status = 0  # the listener does not trust the new CA yet
        if status == 200:
            break
        await asyncio.sleep(0.1)
    assert status == 200
    # The old CA no longer vouches for identity headers.
    try:
        status, body = await cluster.get(DISCOVERY, cert=cluster.aggregator_cert(), headers=headers)
        assert status == 401, body
    except aiohttp.ClientError:
        pass  # or the handshake refuses it
    cluster.kube.set_authentication_configmap(
        client_ca=cluster.client_ca.cert_pem.decode(),
        requestheader_ca=cluster.front_proxy_ca.cert_pem.decode(),
        allowed_names=["front-proxy-client"],
    )
    # Leave the cluster as found: wait until the original CA vouches again.
    deadline = time.monotonic() + 5
    while (await cluster.get(DISCOVERY, cert=cluster.aggregator_cert(), headers=headers))[0] != 200:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)


async def test_resource_metrics_from_watch_caches(cluster: Cluster) -> None:
    """metrics.k8s.io in cluster mode: Running pods and nodes come from the watch caches; only
    objects with metrics appear (db-0 and node-c have none, done-0 is not Running)."""
    masters = {"X-Remote-User": "system:kube-aggregator", "X-Remote-Group": "system:masters"}
    cert = cluster.aggregator_cert()
    path = "/apis/metrics.k8s.io/v1beta1/namespaces/demo/pods"
    status, body = await cluster.get(path, cert=cert, headers=masters)
    assert status == 200, body
    assert [item["metadata"]["name"] for item in body["items"]] == ["web-0", "web-1", "web-2"]
    assert body["items"][0]["metadata"]["labels"] == {"app": "web"}
    usage = {"cpu": "500m", "memory": "128Mi"}
    assert body["items"][2]["containers"] == [{"name": "web", "usage": usage}]
    path = "/apis/metrics.k8s.io/v1beta1/nodes?labelSelector=pool%3Ddemo"
    status, body = await cluster.get(path, cert=cert, headers=masters)
    assert status == 200, body
    nodes = {(n["metadata"]["name"], n["usage"]["cpu"]) for n in body["items"]}
    assert nodes == {("node-a", "1500m"), ("node-b", "500m")}
