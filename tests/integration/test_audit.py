"""Audit logging end to end: the adapter process in cluster mode (the fake kube-apiserver for
authentication and authorization, a stub Prometheus) with a policy file and --audit-log-path;
requests over real HTTPS, the audit log read back line by line."""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from harness.adapter import AdapterProcess
from harness.fake_kube_apiserver import FakeKubeAPIServer, UserInfo, running_fake_kube_apiserver
from harness.ports import free_port

pytestmark = pytest.mark.asyncio(loop_scope="module")

HPA = "system:serviceaccount:kube-system:horizontal-pod-autoscaler"
METRIC = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/demo/pods/web-0/http_requests_per_second"
DISCOVERY = "/apis/custom.metrics.k8s.io/v1beta2"

CONFIG = """\
rules:
- seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
  resources:
    overrides:
      namespace: {resource: namespace}
      pod: {resource: pod}
  name:
    matches: "^(.*)_total$"
    as: "${1}_per_second"
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)'
"""

POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: None
    nonResourceURLs: ["/healthz*", "/readyz*", "/livez*"]
  - level: RequestResponse
    resources:
      - group: custom.metrics.k8s.io
        resources: ["pods/*"]
  - level: Metadata
"""


async def stub_prometheus() -> web.AppRunner:
    """Just enough Prometheus: one series, and 2 for every query."""
    series = {"__name__": "http_requests_total", "namespace": "demo", "pod": "web-0"}

    async def series_list(request: web.Request) -> web.Response:
        return web.json_response({"status": "success", "data": [series]})

    async def query(request: web.Request) -> web.Response:
        sample = {"metric": {"pod": "web-0"}, "value": [time.time(), "2"]}
        return web.json_response(
            {"status": "success", "data": {"resultType": "vector", "result": [sample]}}
        )

    app = web.Application()
    for method in ("GET", "POST"):
        app.router.add_route(method, "/api/v1/series", series_list)
        app.router.add_route(method, "/api/v1/query", query)
    runner = web.AppRunner(app)
    await runner.setup()
    return runner


@dataclass
class Audited:
    adapter: AdapterProcess
    kube: FakeKubeAPIServer
    log_path: Path

    async def get(self, path: str, token: str | None = None) -> aiohttp.ClientResponse:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                self.adapter.url + path, ssl=self.adapter.ssl_context(), headers=headers
            ) as response,
        ):
            await response.read()
            return response

    def events(self) -> list[dict[str, Any]]:
        if not self.log_path.exists():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line]

    async def events_of(self, audit_id: str, count: int) -> list[dict[str, Any]]:
        """The events of one request, once `count` of them are in the log (10 s at most)."""
        deadline = time.monotonic() + 10
        while True:
            found = [e for e in self.events() if e["auditID"] == audit_id]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.02)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def audited(tmp_path_factory: Any) -> AsyncIterator[Audited]:
    workdir = tmp_path_factory.mktemp("audit")
    (workdir / "config.yaml").write_text(CONFIG)
    (workdir / "policy.yaml").write_text(POLICY)
    log_path = workdir / "audit" / "audit.log"
    prometheus = await stub_prometheus()
    prometheus_port = free_port()
    site = web.TCPSite(prometheus, "127.0.0.1", prometheus_port)
    await site.start()
    try:
        async with running_fake_kube_apiserver() as kube:
            kube.add_object("v1/namespaces", {"metadata": {"name": "demo"}})
            kube.add_object("v1/pods", {"metadata": {"name": "web-0", "namespace": "demo"}})
            kube.set_authentication_configmap()
            kube.tokens["hpa-token"] = UserInfo(HPA, groups=("system:serviceaccounts",))
            kube.tokens["bob-token"] = UserInfo("bob")
            kube.allow(user=HPA, group_name="custom.metrics.k8s.io")
            kube.allow(group="system:authenticated", non_resource_path="/apis*", verb="get")
            kubeconfig = kube.kubeconfig(workdir / "kubeconfig")
            adapter = AdapterProcess(
                workdir / "config.yaml",
                f"http://127.0.0.1:{prometheus_port}",
                [
                    f"--lister-kubeconfig={kubeconfig}",
                    f"--authentication-kubeconfig={kubeconfig}",
                    f"--authorization-kubeconfig={kubeconfig}",
                    "--discovery-mode=series",
                    f"--audit-policy-file={workdir / 'policy.yaml'}",
                    f"--audit-log-path={log_path}",
                ],
                no_cluster=False,
            )
            try:
                await adapter.start()
                yield Audited(adapter, kube, log_path)
            finally:
                await adapter.close()
    finally:
        await prometheus.cleanup()


async def test_allowed_resource_request_at_request_response(audited: Audited) -> None:
    response = await audited.get(METRIC, "hpa-token")
    assert response.status == 200
    audit_id = response.headers["Audit-ID"]
    received, complete = await audited.events_of(audit_id, 2)
    assert received["stage"] == "RequestReceived" and complete["stage"] == "ResponseComplete"
    assert complete["level"] == "RequestResponse"
    assert complete["user"]["username"] == HPA
    assert "system:authenticated" in complete["user"]["groups"]
    assert complete["objectRef"] == {
        "resource": "pods",
        "namespace": "demo",
        "name": "web-0",
        "apiGroup": "custom.metrics.k8s.io",
        "apiVersion": "v1beta2",
        "subresource": "http_requests_per_second",
    }
    assert complete["annotations"]["authorization.k8s.io/decision"] == "allow"
    assert complete["annotations"]["authorization.k8s.io/reason"].startswith("RBAC: allowed by")
    assert complete["responseStatus"] == {"metadata": {}, "code": 200}
    assert complete["responseObject"]["kind"] == "MetricValueList"
    assert complete["responseObject"]["items"][0]["value"] == "2"
    assert complete["sourceIPs"] == ["127.0.0.1"]


async def test_discovery_at_metadata(audited: Audited) -> None:
    response = await audited.get(DISCOVERY, "bob-token")
    assert response.status == 200
    events = await audited.events_of(response.headers["Audit-ID"], 2)
    assert [e["stage"] for e in events] == ["RequestReceived", "ResponseComplete"]
    assert events[-1]["level"] == "Metadata" and "responseObject" not in events[-1]
    assert events[-1]["verb"] == "get" and "objectRef" not in events[-1]


async def test_forbidden_request(audited: Audited) -> None:
    response = await audited.get(METRIC, "bob-token")
    assert response.status == 403
    complete = (await audited.events_of(response.headers["Audit-ID"], 2))[-1]
    assert complete["annotations"]["authorization.k8s.io/decision"] == "forbid"
    assert complete["responseStatus"]["reason"] == "Forbidden"
    assert complete["responseStatus"]["code"] == 403


async def test_failed_authentication(audited: Audited) -> None:
    response = await audited.get(DISCOVERY, "wrong-token")
    assert response.status == 401
    [event] = await audited.events_of(response.headers["Audit-ID"], 1)
    assert event["stage"] == "ResponseStarted" and event["user"] == {}
    assert event["responseStatus"]["code"] == 401


async def test_level_none_and_no_secrets(audited: Audited) -> None:
    response = await audited.get("/readyz", "hpa-token")
    assert response.status == 200
    audit_id = response.headers["Audit-ID"]
    # Written in blocking mode before the response: a later request's events are there, so
    # /readyz's would be too.
    marker = await audited.get("/version", "hpa-token")
    assert await audited.events_of(marker.headers["Audit-ID"], 2)
    assert [e for e in audited.events() if e["auditID"] == audit_id] == []
    assert not any(e["requestURI"].startswith("/readyz") for e in audited.events())
    text = audited.log_path.read_text()
    for token in ("hpa-token", "bob-token", "wrong-token"):
        assert token not in text
