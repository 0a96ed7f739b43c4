"""Impersonation end to end: the adapter process in cluster mode (the fake kube-apiserver for
TokenReview and SubjectAccessReview, a real Prometheus scraping the demo exporter) and clients
sending `Impersonate-*` headers directly, as `kubectl --as` does against the adapter
(port-forward, no aggregator). The audit log shows who acted as whom."""

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from harness.fake_kube_apiserver import UserInfo
from harness.kubectl import kubectl, write_kubeconfig
from tests.integration.conftest import WEB_0_REQUESTS_PER_SECOND, AuditedAdapter, audited_adapter

pytestmark = pytest.mark.asyncio(loop_scope="module")

METRIC = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/demo/pods/web-0/http_requests_per_second"
# Never queried: bob is refused it before any query, so it needs no data or objects.
OTHER_NAMESPACE = METRIC.replace("/demo/", "/other/")
READER_SA = "system:serviceaccount:demo:metrics-reader"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def impersonating(tmp_path_factory: Any) -> AsyncIterator[AuditedAdapter]:
    async with audited_adapter(tmp_path_factory.mktemp("impersonation")) as audited:
        kube = audited.kube
        kube.tokens["admin-token"] = UserInfo("admin", groups=("ops",))
        kube.tokens["alice-token"] = UserInfo("alice")
        kube.tokens["root-token"] = UserInfo("root", groups=("system:masters",))
        # RBAC as a cluster admin would grant it: ops may impersonate users and the
        # demo namespace's service accounts; bob and the SA may read demo's metrics.
        kube.allow(group="ops", verb="impersonate", resource="users")
        kube.allow(group="ops", verb="impersonate", resource="serviceaccounts", namespace="demo")
        for user in ("bob", READER_SA):
            kube.allow(user=user, group_name="custom.metrics.k8s.io", namespace="demo")
        yield audited


def forbidden_to_impersonate(user: str, impersonated: str) -> str:
    return (
        f'users "{impersonated}" is forbidden: User "{user}" cannot impersonate resource '
        f'"users" in API group "" at the cluster scope'
    )


async def test_admin_is_answered_as_the_impersonated_user(impersonating: AuditedAdapter) -> None:
    as_bob = [("Impersonate-User", "bob")]
    # The admin itself may not read metrics: the 200 is bob's.
    status, body, _ = await impersonating.get(METRIC, "admin-token")
    assert status == 403, body
    status, body, audit_id = await impersonating.get(METRIC, "admin-token", as_bob)
    assert status == 200, body
    assert body["items"][0]["value"] == WEB_0_REQUESTS_PER_SECOND
    event = impersonating.completed(audit_id)
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


async def test_user_without_impersonate_rights_is_refused(impersonating: AuditedAdapter) -> None:
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
    event = impersonating.completed(audit_id)
    assert event["user"]["username"] == "alice" and "impersonatedUser" not in event
    # The impersonation check is not the authorization filter's decision.
    assert "annotations" not in event


async def test_service_account_and_groups(impersonating: AuditedAdapter) -> None:
    status, body, audit_id = await impersonating.get(
        METRIC, "admin-token", [("Impersonate-User", READER_SA)]
    )
    assert status == 200, body
    event = impersonating.completed(audit_id)
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


async def test_system_masters_impersonate_without_review(impersonating: AuditedAdapter) -> None:
    before = impersonating.kube.count("POST", "/apis/authorization.k8s.io")
    status, body, _ = await impersonating.get(
        "/apis/custom.metrics.k8s.io/v1beta2",
        "root-token",
        [("Impersonate-User", "bob"), ("Impersonate-Group", "system:masters")],
    )
    assert status == 200, body
    # Impersonation and authorization both allowed by system:masters: no review at all.
    assert impersonating.kube.count("POST", "/apis/authorization.k8s.io") == before


async def test_groups_without_user_are_a_500(impersonating: AuditedAdapter) -> None:
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
    impersonating: AuditedAdapter, token: str, as_user: str | None, expected: str | None
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
        assert json.loads(out)["items"][0]["value"] == WEB_0_REQUESTS_PER_SECOND
    else:
        assert code != 0 and "Error from server (Forbidden)" in err and expected in err, err
