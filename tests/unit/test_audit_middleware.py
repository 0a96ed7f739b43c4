"""The audit filters in the middleware chain, as k8s.io/apiserver's WithAuditInit, WithAudit,
WithFailedAuthenticationAudit and WithAuthorization's annotations behave."""

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry

from adapter.audit.event import Event
from adapter.audit.levels import Stage
from adapter.audit.metrics import AuditMetrics
from adapter.audit.middleware import Auditor, audit_chain, audit_decisions
from adapter.audit.policy import parse_policy
from adapter.auth.authorizers import Attributes, AuthorizationError, Decision
from adapter.auth.credentials import AuthenticationFailed, AuthRequest
from adapter.auth.middleware import authentication_middleware, authorization_middleware
from adapter.auth.user import UserInfo
from adapter.errors import path_not_found
from adapter.server.metrics import AdapterMetrics
from adapter.server.middleware import error_middleware
from adapter.server.responses import object_response

ALICE = UserInfo("alice", groups=("devs", "system:authenticated"))
TOKEN = "very-secret-token"
METRIC = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/demo/pods/*/http_requests"
LIST = {
    "kind": "MetricValueList",
    "apiVersion": "custom.metrics.k8s.io/v1beta2",
    "metadata": {},
    "items": [],
}

ClientFactory = Callable[[web.Application], Awaitable[TestClient[web.Request, web.Application]]]


class Recorder:
    name = "recorder"

    def __init__(self, result: bool = True) -> None:
        self.events: list[Event] = []
        self.result = result

    def start(self) -> None:
        pass

    async def process(self, events: Sequence[Event]) -> bool:
        self.events.extend(events)
        return self.result

    async def shutdown(self) -> None:
        pass


class Tokens:
    async def authenticate(self, request: AuthRequest) -> UserInfo | None:
        header = request.headers.get("Authorization")
        if header is None:
            return None
        if header == f"Bearer {TOKEN}":
            return ALICE
        raise AuthenticationFailed("invalid bearer token")


class ByPath:
    async def authorize(self, attributes: Attributes) -> Decision:
        if attributes.request.path == "/forbidden":
            return Decision(False, "no RBAC policy matched")
        if attributes.request.path == "/sar-down":
            raise AuthorizationError("subjectaccessreviews: connection refused")
        return Decision(True, 'RBAC: allowed by ClusterRoleBinding "x"')


async def metric(request: web.Request) -> web.Response:
    return object_response(request, LIST)


async def version(request: web.Request) -> web.Response:
    return object_response(request, {"major": "1", "minor": "0"})


async def missing(request: web.Request) -> web.Response:
    raise path_not_found()


async def crash(request: web.Request) -> web.Response:
    raise RuntimeError("index out of range")


POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: None
    nonResourceURLs: ["/healthz"]
  - level: RequestResponse
    nonResourceURLs: ["/version"]
  - level: RequestResponse
    users: ["rr"]
  - level: Metadata
    omitStages: [RequestReceived]
    nonResourceURLs: ["/quiet"]
  - level: Metadata
"""


def make_app(auditor: Auditor | None, *, cluster: bool = True) -> web.Application:
    if cluster:
        chain = audit_chain(
            auditor,
            authentication_middleware(Tokens()),
            authorization_middleware(audit_decisions(auditor, ByPath())),
        )
    else:
        chain = audit_chain(auditor)
    app = web.Application(middlewares=[error_middleware(AdapterMetrics()), *chain])
    app.router.add_get(METRIC, metric)
    for path in ("/version", "/forbidden", "/sar-down", "/healthz", "/quiet"):
        app.router.add_get(path, version)
    app.router.add_get("/missing", missing)
    app.router.add_get("/crash", crash)
    return app


def make_auditor(
    backend: Recorder | None = None, policy: str = POLICY, registry: CollectorRegistry | None = None
) -> tuple[Auditor, Recorder]:
    recorder = backend or Recorder()
    auditor = Auditor(parse_policy(policy), recorder, AuditMetrics(registry or CollectorRegistry()))
    return auditor, recorder


def docs(recorder: Recorder) -> list[dict[str, Any]]:
    return [orjson.loads(event.json) for event in recorder.events]


async def test_allowed_request_two_stages(aiohttp_client: ClientFactory) -> None:
    registry = CollectorRegistry()
    auditor, recorder = make_auditor(registry=registry)
    client = await aiohttp_client(make_app(auditor))
    response = await client.get(
        METRIC,
        params={"labelSelector": "app=web"},
        headers={
            "Authorization": f"Bearer {TOKEN}",
            "User-Agent": "hpa/1.0",
            "X-Forwarded-For": "10.1.2.3",
        },
    )
    assert response.status == 200
    received, complete = docs(recorder)
    assert response.headers["Audit-ID"] == received["auditID"] == complete["auditID"]
    assert received["stage"] == "RequestReceived" and complete["stage"] == "ResponseComplete"
    assert (
        received["stageTimestamp"]
        == received["requestReceivedTimestamp"]
        == complete["requestReceivedTimestamp"]
    )
    assert complete["stageTimestamp"] >= complete["requestReceivedTimestamp"]
    assert (
        received["requestURI"]
        == "/apis/custom.metrics.k8s.io/v1beta2/namespaces/demo/pods/*/http_requests?labelSelector=app%3Dweb"
    )
    assert received["verb"] == "get"
    assert received["user"] == {"username": "alice", "groups": ["devs", "system:authenticated"]}
    assert received["sourceIPs"] == ["10.1.2.3", "127.0.0.1"]
    assert received["userAgent"] == "hpa/1.0"
    assert received["objectRef"] == {
        "resource": "pods",
        "namespace": "demo",
        "name": "*",
        "apiGroup": "custom.metrics.k8s.io",
        "apiVersion": "v1beta2",
        "subresource": "http_requests",
    }
    # Authorization runs after RequestReceived was written: only the final event has its say.
    assert "annotations" not in received and "responseStatus" not in received
    assert complete["annotations"] == {
        "authorization.k8s.io/decision": "allow",
        "authorization.k8s.io/reason": 'RBAC: allowed by ClusterRoleBinding "x"',
    }
    assert complete["responseStatus"] == {"metadata": {}, "code": 200}
    assert "responseObject" not in complete  # Metadata level
    assert registry.get_sample_value("apiserver_audit_event_total") == 2
    assert registry.get_sample_value("apiserver_audit_level_total", {"level": "Metadata"}) == 1


async def test_callers_audit_id_is_kept(aiohttp_client: ClientFactory) -> None:
    auditor, recorder = make_auditor()
    client = await aiohttp_client(make_app(auditor))
    response = await client.get("/forbidden", headers={"Audit-ID": "from-kube-apiserver"})
    assert response.headers["Audit-ID"] == "from-kube-apiserver"
    assert {d["auditID"] for d in docs(recorder)} == {"from-kube-apiserver"}


async def test_forbidden_is_annotated_with_the_status(aiohttp_client: ClientFactory) -> None:
    auditor, recorder = make_auditor()
    client = await aiohttp_client(make_app(auditor))
    response = await client.get("/forbidden")
    assert response.status == 403
    complete = docs(recorder)[-1]
    assert complete["user"] == {
        "username": "system:anonymous",
        "groups": ["system:unauthenticated"],
    }
    assert complete["annotations"] == {
        "authorization.k8s.io/decision": "forbid",
        "authorization.k8s.io/reason": "no RBAC policy matched",
    }
    assert complete["responseStatus"] == {
        "metadata": {},
        "status": "Failure",
        "message": 'forbidden: User "system:anonymous" cannot get path "/forbidden": no RBAC policy matched',
        "reason": "Forbidden",
        "details": {},
        "code": 403,
    }


async def test_authorizer_error_is_annotated_internal_error(aiohttp_client: ClientFactory) -> None:
    auditor, recorder = make_auditor()
    client = await aiohttp_client(make_app(auditor))
    response = await client.get("/sar-down")
    assert response.status == 500
    complete = docs(recorder)[-1]
    assert complete["annotations"] == {"authorization.k8s.io/reason": "internal error"}
    assert complete["responseStatus"] == {"metadata": {}, "code": 500}  # plain text, no Status


async def test_failed_authentication_is_audited_once(aiohttp_client: ClientFactory) -> None:
    auditor, recorder = make_auditor()
    client = await aiohttp_client(make_app(auditor))
    response = await client.get(METRIC, headers={"Authorization": "Bearer wrong-secret"})
    assert response.status == 401
    [event] = docs(recorder)
    assert response.headers["Audit-ID"] == event["auditID"]
    assert event["stage"] == "ResponseStarted"
    assert event["user"] == {}
    assert event["verb"] == "get" and event["objectRef"]["resource"] == "pods"
    # Go's Unauthorized handler logs its Status over the "Authentication failed" message.
    assert event["responseStatus"] == {
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }
    assert b"wrong-secret" not in recorder.events[0].json


async def test_failed_authentication_rules_without_users_only(
    aiohttp_client: ClientFactory,
) -> None:
    # No user yet: a rule for users or groups cannot match a rejected request.
    policy = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n  userGroups: [system:unauthenticated]\n"
    auditor, recorder = make_auditor(policy=policy)
    client = await aiohttp_client(make_app(auditor))
    assert (await client.get("/version", headers={"Authorization": "Bearer nope"})).status == 401
    assert recorder.events == []


async def test_credentials_never_reach_the_events(aiohttp_client: ClientFactory) -> None:
    auditor, recorder = make_auditor(
        policy="apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n"
    )
    client = await aiohttp_client(make_app(auditor))
    for token in (TOKEN, "other-secret"):
        await client.get(METRIC, headers={"Authorization": f"Bearer {token}"})
    assert len(recorder.events) == 3
    for event in recorder.events:
        assert TOKEN.encode() not in event.json and b"other-secret" not in event.json
        assert b"Authorization" not in event.json and b"Bearer" not in event.json


async def test_level_none_records_nothing_but_sends_the_audit_id(
    aiohttp_client: ClientFactory,
) -> None:
    registry = CollectorRegistry()
    auditor, recorder = make_auditor(registry=registry)
    client = await aiohttp_client(make_app(auditor))
    response = await client.get("/healthz")
    assert response.status == 200 and response.headers["Audit-ID"]
    assert recorder.events == []
    assert registry.get_sample_value("apiserver_audit_level_total", {"level": "None"}) == 1


async def test_omitted_stage(aiohttp_client: ClientFactory) -> None:
    auditor, recorder = make_auditor()
    client = await aiohttp_client(make_app(auditor))
    await client.get("/quiet")
    assert [d["stage"] for d in docs(recorder)] == ["ResponseComplete"]


async def test_request_response_logs_kubernetes_objects_only(aiohttp_client: ClientFactory) -> None:
    policy = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n"
    auditor, recorder = make_auditor(policy=policy)
    client = await aiohttp_client(make_app(auditor))
    await client.get(
        METRIC, params={"pretty": "true"}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    complete = docs(recorder)[-1]
    assert complete["responseObject"] == LIST
    assert (
        b'"responseObject":{"kind":"MetricValueList","apiVersion"' in recorder.events[-1].json
    )  # compact
    assert "responseObject" not in docs(recorder)[0]
    recorder.events.clear()
    await client.get("/version")  # written raw by Go, not through the object serializer
    assert "responseObject" not in docs(recorder)[-1]
    recorder.events.clear()
    await client.get("/missing")
    assert docs(recorder)[-1]["responseObject"]["kind"] == "Status"


async def test_api_errors_are_recorded_as_error_middleware_answers(
    aiohttp_client: ClientFactory,
) -> None:
    auditor, recorder = make_auditor()
    client = await aiohttp_client(make_app(auditor))
    response = await client.get("/missing")
    assert response.status == 404
    assert await response.json() == path_not_found().status()
    assert docs(recorder)[-1]["responseStatus"] == {
        "metadata": {},
        "status": "Failure",
        "message": "the server could not find the requested resource",
        "reason": "NotFound",
        "details": {},
        "code": 404,
    }
    response = await client.get("/no/such/route")
    assert response.status == 404 and response.headers["Audit-ID"]
    assert docs(recorder)[-1]["responseStatus"]["reason"] == "NotFound"


async def test_panic_stage(aiohttp_client: ClientFactory) -> None:
    auditor, recorder = make_auditor()
    client = await aiohttp_client(make_app(auditor))
    response = await client.get("/crash")
    assert response.status == 500
    assert [d["stage"] for d in docs(recorder)] == ["RequestReceived", "Panic"]
    assert docs(recorder)[-1]["responseStatus"] == {
        "metadata": {},
        "status": "Failure",
        "message": "APIServer panic'd: index out of range",
        "reason": "InternalError",
        "code": 500,
    }


async def test_blocking_strict_failure_rejects_the_request(aiohttp_client: ClientFactory) -> None:
    registry = CollectorRegistry()
    auditor, recorder = make_auditor(Recorder(result=False), registry=registry)
    client = await aiohttp_client(make_app(auditor))
    response = await client.get("/version")
    assert response.status == 500
    assert (
        await response.text() == 'Internal Server Error: "/version": failed to store audit event\n'
    )
    assert [e.stage for e in recorder.events] == [Stage.REQUEST_RECEIVED]
    assert registry.get_sample_value("apiserver_audit_requests_rejected_total") == 1


async def test_no_cluster_requests_are_anonymous(aiohttp_client: ClientFactory) -> None:
    auditor, recorder = make_auditor()
    client = await aiohttp_client(make_app(auditor, cluster=False))
    response = await client.get(METRIC)
    assert response.status == 200 and response.headers["Audit-ID"]
    received, complete = docs(recorder)
    assert received["user"] == {
        "username": "system:anonymous",
        "groups": ["system:unauthenticated"],
    }
    assert "annotations" not in complete  # no authorization filter


async def test_audit_off_adds_nothing(aiohttp_client: ClientFactory) -> None:
    authn, authz = authentication_middleware(Tokens()), authorization_middleware(ByPath())
    assert audit_chain(None, authn, authz) == [authn, authz]
    assert audit_chain(None) == []
    authorizer = ByPath()
    assert audit_decisions(None, authorizer) is authorizer
    client = await aiohttp_client(make_app(None))
    response = await client.get("/version")
    assert response.status == 200 and "Audit-ID" not in response.headers
