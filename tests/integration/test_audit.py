"""Audit logging end to end: the adapter process in cluster mode (the fake kube-apiserver for
authentication and authorization, a real Prometheus scraping the demo exporter) with conftest's
AUDIT_POLICY and --audit-log-path; requests over real HTTPS, the audit log read back line by
line."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from harness.fake_kube_apiserver import UserInfo
from tests.integration.conftest import WEB_0_REQUESTS_PER_SECOND, AuditedAdapter, audited_adapter

pytestmark = pytest.mark.asyncio(loop_scope="module")

HPA = "system:serviceaccount:kube-system:horizontal-pod-autoscaler"
METRIC = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/demo/pods/web-0/http_requests_per_second"
DISCOVERY = "/apis/custom.metrics.k8s.io/v1beta2"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def audited(tmp_path_factory: Any) -> AsyncIterator[AuditedAdapter]:
    async with audited_adapter(tmp_path_factory.mktemp("audit")) as audited:
        audited.kube.tokens["hpa-token"] = UserInfo(HPA, groups=("system:serviceaccounts",))
        audited.kube.tokens["bob-token"] = UserInfo("bob")
        audited.kube.allow(user=HPA, group_name="custom.metrics.k8s.io")
        yield audited


async def test_allowed_resource_request_at_request_response(audited: AuditedAdapter) -> None:
    reply = await audited.get(METRIC, "hpa-token")
    assert reply.status == 200
    received, complete = audited.events(reply.audit_id)
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
    assert complete["responseObject"]["items"][0]["value"] == WEB_0_REQUESTS_PER_SECOND
    assert complete["sourceIPs"] == ["127.0.0.1"]


async def test_discovery_at_metadata(audited: AuditedAdapter) -> None:
    reply = await audited.get(DISCOVERY, "bob-token")
    assert reply.status == 200
    events = audited.events(reply.audit_id)
    assert [e["stage"] for e in events] == ["RequestReceived", "ResponseComplete"]
    assert events[-1]["level"] == "Metadata" and "responseObject" not in events[-1]
    assert events[-1]["verb"] == "get" and "objectRef" not in events[-1]


async def test_forbidden_request(audited: AuditedAdapter) -> None:
    reply = await audited.get(METRIC, "bob-token")
    assert reply.status == 403
    complete = audited.completed(reply.audit_id)
    assert complete["annotations"]["authorization.k8s.io/decision"] == "forbid"
    assert complete["responseStatus"]["reason"] == "Forbidden"
    assert complete["responseStatus"]["code"] == 403


async def test_failed_authentication(audited: AuditedAdapter) -> None:
    reply = await audited.get(DISCOVERY, "wrong-token")
    assert reply.status == 401
    [event] = audited.events(reply.audit_id)
    assert event["stage"] == "ResponseStarted" and event["user"] == {}
    assert event["responseStatus"]["code"] == 401


async def test_level_none_and_no_secrets(audited: AuditedAdapter) -> None:
    reply = await audited.get("/readyz", "hpa-token")
    assert reply.status == 200
    # Written in blocking mode before the response: a later request's events are there, so
    # /readyz's would be too.
    marker = await audited.get("/version", "hpa-token")
    assert len(audited.events(marker.audit_id)) == 2
    assert audited.events(reply.audit_id) == []
    assert not any(e["requestURI"].startswith("/readyz") for e in audited.events())
    text = audited.log_path.read_text()
    for token in ("hpa-token", "bob-token", "wrong-token"):
        assert token not in text
