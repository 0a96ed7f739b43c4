"""Impersonation end to end: the adapter process in cluster mode (the fake kube-apiserver for
TokenReview and SubjectAccessReview, a stub Prometheus) and clients sending `Impersonate-*`
headers directly, as `kubectl --as` does against the adapter (port-forward, no aggregator).
The audit log shows who acted as whom."""

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
from multidict import CIMultiDict

from harness.adapter import AdapterProcess
from harness.fake_kube_apiserver import FakeKubeAPIServer, UserInfo, running_fake_kube_apiserver
from harness.kubectl import kubectl, write_kubeconfig
from harness.ports import free_port

pytestmark = pytest.mark.asyncio(loop_scope="module")

METRIC = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/demo/pods/web-0/http_requests_per_second"
OTHER_NAMESPACE = METRIC.replace("/demo/", "/other/")
READER_SA = "system:serviceaccount:demo:metrics-reader"

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
  - level: Metadata
"""


async def stub_prometheus() -> web.AppRunner:
    """Just enough Prometheus: one series per namespace, and 2 for every query."""
    series = [
        {"__name__": "http_requests_total", "namespace": namespace, "pod": "web-0"}
        for namespace in ("demo", "other")
    ]

    async def series_list(request: web.Request) -> web.Response:
        return web.json_response({"status": "success", "data": series})

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
class Impersonating:
    adapter: AdapterProcess
    kube: FakeKubeAPIServer
    log_path: Path
    workdir: Path

    async def get(
        self, path: str, token: str, impersonate: list[tuple[str, str]] | None = None
    ) -> tuple[int, Any, str]:
        """(status, JSON body or text, Audit-ID)."""
        headers = CIMultiDict([("Authorization", f"Bearer {token}"), *(impersonate or [])])
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                self.adapter.url + path, ssl=self.adapter.ssl_context(), headers=headers
            ) as response,
        ):
            audit_id = response.headers.get("Audit-ID", "")
            if response.content_type == "application/json":
                return response.status, await response.json(), audit_id
            return response.status, await response.text(), audit_id

    async def completed_event(self, audit_id: str) -> dict[str, Any]:
        """The ResponseComplete event of one request (10 s at most)."""
        deadline = time.monotonic() + 10
        while True:
            if self.log_path.exists():
                for line in self.log_path.read_text().splitlines():
                    event: dict[str, Any] = json.loads(line)
                    if event["auditID"] == audit_id and event["stage"] == "ResponseComplete":
                        return event
            if time.monotonic() > deadline:
                raise AssertionError(f"no ResponseComplete event for {audit_id}")
            await asyncio.sleep(0.02)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def impersonating(tmp_path_factory: Any) -> AsyncIterator[Impersonating]:
    workdir = tmp_path_factory.mktemp("impersonation")
    (workdir / "config.yaml").write_text(CONFIG)
    (workdir / "policy.yaml").write_text(POLICY)
    log_path = workdir / "audit.log"
    prometheus = await stub_prometheus()
    prometheus_port = free_port()
    site = web.TCPSite(prometheus, "127.0.0.1", prometheus_port)
    await site.start()
    try:
        async with running_fake_kube_apiserver() as kube:
            for namespace in ("demo", "other"):
                kube.add_object("v1/namespaces", {"metadata": {"name": namespace}})
                kube.add_object("v1/pods", {"metadata": {"name": "web-0", "namespace": namespace}})
            kube.set_authentication_configmap()
            kube.tokens["admin-token"] = UserInfo("admin", groups=("ops",))
            kube.tokens["alice-token"] = UserInfo("alice")
            kube.tokens["root-token"] = UserInfo("root", groups=("system:masters",))
            # RBAC as a cluster admin would grant it: ops may impersonate users and the
            # demo namespace's service accounts; bob and the SA may read demo's metrics.
            kube.allow(group="ops", verb="impersonate", resource="users")
            kube.allow(
                group="ops", verb="impersonate", resource="serviceaccounts", namespace="demo"
            )
            for user in ("bob", READER_SA):
                kube.allow(user=user, group_name="custom.metrics.k8s.io", namespace="demo")
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
                yield Impersonating(adapter, kube, log_path, workdir)
            finally:
                await adapter.close()
    finally:
        await prometheus.cleanup()


def forbidden_to_impersonate(user: str, impersonated: str) -> str:
    return (
        f'users "{impersonated}" is forbidden: User "{user}" cannot impersonate resource '
        f'"users" in API group "" at the cluster scope'
    )


async def test_admin_is_answered_as_the_impersonated_user(impersonating: Impersonating) -> None:
    as_bob = [("Impersonate-User", "bob")]
    # The admin itself may not read metrics: the 200 is bob's.
    status, body, _ = await impersonating.get(METRIC, "admin-token")
    assert status == 403, body
    status, body, audit_id = await impersonating.get(METRIC, "admin-token", as_bob)
    assert status == 200, body
    assert body["items"][0]["value"] == "2"
    event = await impersonating.completed_event(audit_id)
    assert event["user"]["username"] == "admin"
    assert event["impersonatedUser"] == {"username": "bob", "groups": ["system:authenticated"]}
    assert event["annotations"]["authorization.k8s.io/decision"] == "allow"
    # bob may not read the other namespace, whatever the admin could do.
    status, body, _ = await impersonating.get(OTHER_NAMESPACE, "admin-token", as_bob)
    assert status == 403
    assert body["message"].startswith(
        'pods.custom.metrics.k8s.io "web-0" is forbidden: User "bob" cannot get resource '
        '"pods/http_requests_per_second" in API group "custom.metrics.k8s.io" in the namespace '
        '"other"'
    )
    # carol has no rule: allowed to be impersonated, refused the metric.
    status, body, _ = await impersonating.get(
        METRIC, "admin-token", [("Impersonate-User", "carol")]
    )
    assert status == 403 and 'User "carol" cannot get' in body["message"]


async def test_user_without_impersonate_rights_is_refused(impersonating: Impersonating) -> None:
    status, body, audit_id = await impersonating.get(
        METRIC, "alice-token", [("Impersonate-User", "bob")]
    )
    assert status == 403
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": forbidden_to_impersonate("alice", "bob"),
        "reason": "Forbidden",
        "details": {"name": "bob", "kind": "users"},
        "code": 403,
    }
    event = await impersonating.completed_event(audit_id)
    assert event["user"]["username"] == "alice" and "impersonatedUser" not in event
    # The impersonation check is not the authorization filter's decision.
    assert "annotations" not in event


async def test_service_account_and_groups(impersonating: Impersonating) -> None:
    status, body, audit_id = await impersonating.get(
        METRIC, "admin-token", [("Impersonate-User", READER_SA)]
    )
    assert status == 200, body
    event = await impersonating.completed_event(audit_id)
    assert event["impersonatedUser"] == {
        "username": READER_SA,
        "groups": ["system:serviceaccounts", "system:serviceaccounts:demo", "system:authenticated"],
    }
    # Another namespace's service account: the check is namespaced.
    status, body, _ = await impersonating.get(
        METRIC, "admin-token", [("Impersonate-User", "system:serviceaccount:other:x")]
    )
    assert status == 403
    assert body["message"] == (
        'serviceaccounts "x" is forbidden: User "admin" cannot impersonate resource '
        '"serviceaccounts" in API group "" in the namespace "other"'
    )
    # Groups need their own grant.
    status, body, _ = await impersonating.get(
        METRIC, "admin-token", [("Impersonate-User", "bob"), ("Impersonate-Group", "ops")]
    )
    assert status == 403
    assert body["message"].startswith('groups "ops" is forbidden: User "admin" cannot impersonate')


async def test_system_masters_impersonate_without_review(impersonating: Impersonating) -> None:
    before = impersonating.kube.count("POST", "/apis/authorization.k8s.io")
    status, body, _ = await impersonating.get(
        "/apis/custom.metrics.k8s.io/v1beta2",
        "root-token",
        [("Impersonate-User", "bob"), ("Impersonate-Group", "system:masters")],
    )
    assert status == 200, body
    # Impersonation and authorization both allowed by system:masters: no review at all.
    assert impersonating.kube.count("POST", "/apis/authorization.k8s.io") == before


async def test_groups_without_user_are_a_500(impersonating: Impersonating) -> None:
    status, body, _ = await impersonating.get(METRIC, "admin-token", [("Impersonate-Group", "ops")])
    assert status == 500
    assert body == (
        f'Internal Server Error: "{METRIC}": requested [{{Group  ops    }}] without '
        "impersonating a user\n"
    )


@pytest.mark.parametrize(
    ("token", "as_user", "expected"),
    [
        ("admin-token", None, 'User "admin" cannot get resource'),
        ("admin-token", "bob", None),
        ("alice-token", "bob", forbidden_to_impersonate("alice", "bob")),
    ],
)
async def test_kubectl_as(
    impersonating: Impersonating, token: str, as_user: str | None, expected: str | None
) -> None:
    """`kubectl --as` against the adapter, as through a port-forward."""
    kubeconfig = write_kubeconfig(
        impersonating.workdir / f"kubeconfig-{token}",
        impersonating.adapter.url,
        ca_file=str(impersonating.adapter.ca_file),
        token=token,
    )
    flags = [f"--as={as_user}"] if as_user else []
    code, out, err = await kubectl("get", "--raw", METRIC, *flags, kubeconfig=kubeconfig)
    if expected is None:
        assert code == 0, err
        assert json.loads(out)["items"][0]["value"] == "2"
    else:
        assert code != 0 and "Error from server (Forbidden)" in err and expected in err, err
