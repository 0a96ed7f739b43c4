"""The impersonation filter: a port of the cases of k8s.io/apiserver's impersonation_test.go
(TestImpersonationFilter) that apply to a delegating server, plus the SubjectAccessReviews it
sends, its place in the chain and the audit event."""

import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from aiohttp.typedefs import Handler, Middleware
from multidict import CIMultiDict, CIMultiDictProxy
from prometheus_client import CollectorRegistry

from adapter.audit.event import Event, legacy_line
from adapter.audit.levels import Level, Stage
from adapter.audit.metrics import AuditMetrics
from adapter.audit.middleware import Auditor, audit_chain, audit_decisions
from adapter.audit.policy import parse_policy
from adapter.auth.authorizers import (
    AlwaysAllowGroups,
    AlwaysAllowPaths,
    Attributes,
    AuthorizationError,
    Authorizer,
    Decision,
    SubjectAccessReviewAuthorizer,
    UnionAuthorizer,
)
from adapter.auth.impersonation import (
    ImpersonationHeaderError,
    ImpersonationKind,
    ImpersonationRequest,
    impersonated_user,
    impersonation_middleware,
    parse_impersonation_headers,
)
from adapter.auth.middleware import USER_KEY, authorization_middleware
from adapter.auth.user import UserInfo

ClientFactory = Callable[[web.Application], Awaitable[TestClient[web.Request, web.Application]]]

ALICE = UserInfo("alice", groups=("devs", "system:authenticated"))
ADMIN = UserInfo("admin", groups=("system:masters", "system:authenticated"))
METRIC = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/demo/pods/*/http_requests"
AUTHN_V1 = "authentication.k8s.io/v1"
SA = ImpersonationKind.SERVICE_ACCOUNT
USER = ImpersonationKind.USER
GROUP = ImpersonationKind.GROUP
EXTRA = ImpersonationKind.USER_EXTRA
UID = ImpersonationKind.UID


def headers(*pairs: tuple[str, str]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(pairs))


# --- buildImpersonationRequests ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        pytest.param([], [], id="none"),
        pytest.param([("Accept", "application/json")], [], id="other-headers"),
        pytest.param([("Impersonate-User", "bob")], [ImpersonationRequest(USER, "bob")], id="user"),
        pytest.param(
            [("impersonate-user", "bob"), ("Impersonate-User", "carol")],
            [ImpersonationRequest(USER, "bob")],
            id="user-first-value-any-case",
        ),
        pytest.param([("Impersonate-User", "")], [], id="empty-user"),
        pytest.param(
            [("Impersonate-User", "system:serviceaccount:demo:hpa")],
            [ImpersonationRequest(SA, "hpa", "demo")],
            id="service-account",
        ),
        pytest.param(
            [("Impersonate-User", "system:serviceaccount:demo:hpa.v2-x")],
            [ImpersonationRequest(SA, "hpa.v2-x", "demo")],
            id="service-account-subdomain-name",
        ),
        pytest.param(
            [("Impersonate-User", "system:serviceaccount:demo")],
            [ImpersonationRequest(USER, "system:serviceaccount:demo")],
            id="sa-three-parts-is-a-user",
        ),
        pytest.param(
            [("Impersonate-User", "system:serviceaccount:demo:hpa:x")],
            [ImpersonationRequest(USER, "system:serviceaccount:demo:hpa:x")],
            id="sa-five-parts-is-a-user",
        ),
        pytest.param(
            [("Impersonate-User", "system:serviceaccount:Demo:hpa")],
            [ImpersonationRequest(USER, "system:serviceaccount:Demo:hpa")],
            id="sa-invalid-namespace-is-a-user",
        ),
        pytest.param(
            [("Impersonate-User", "system:serviceaccount:demo.x:hpa")],
            [ImpersonationRequest(USER, "system:serviceaccount:demo.x:hpa")],
            id="sa-namespace-must-be-a-label",
        ),
        pytest.param(
            [("Impersonate-User", "system:serviceaccount::hpa")],
            [ImpersonationRequest(USER, "system:serviceaccount::hpa")],
            id="sa-empty-namespace-is-a-user",
        ),
        pytest.param(
            [("Impersonate-User", "system:serviceaccount:demo:hpa_1")],
            [ImpersonationRequest(USER, "system:serviceaccount:demo:hpa_1")],
            id="sa-invalid-name-is-a-user",
        ),
        pytest.param(
            [("Impersonate-User", f"system:serviceaccount:{'n' * 64}:hpa")],
            [ImpersonationRequest(USER, f"system:serviceaccount:{'n' * 64}:hpa")],
            id="sa-namespace-too-long",
        ),
        pytest.param(
            [
                ("Impersonate-Group", "g1"),
                ("Impersonate-User", "bob"),
                ("Impersonate-Group", "g2"),
                ("Impersonate-Group", ""),
            ],
            [
                ImpersonationRequest(USER, "bob"),
                ImpersonationRequest(GROUP, "g1"),
                ImpersonationRequest(GROUP, "g2"),
                ImpersonationRequest(GROUP, ""),
            ],
            id="groups",
        ),
        pytest.param(
            [
                ("Impersonate-Uid", "1234"),
                ("Impersonate-Extra-Scopes", "a"),
                ("Impersonate-Extra-example.org%2Fteam", "x"),
                ("impersonate-extra-scopes", "b"),
                ("Impersonate-Extra-Bad%zzKey", "y"),
                ("Impersonate-User", "bob"),
            ],
            [
                ImpersonationRequest(USER, "bob"),
                ImpersonationRequest(EXTRA, "a", api_version=AUTHN_V1, field_path="scopes"),
                ImpersonationRequest(EXTRA, "b", api_version=AUTHN_V1, field_path="scopes"),
                ImpersonationRequest(
                    EXTRA, "x", api_version=AUTHN_V1, field_path="example.org/team"
                ),
                ImpersonationRequest(EXTRA, "y", api_version=AUTHN_V1, field_path="bad%zzkey"),
                ImpersonationRequest(UID, "1234", api_version=AUTHN_V1),
            ],
            id="extras-escaped-keys-and-uid",
        ),
        pytest.param(
            [("Impersonate-User", "bob"), ("Impersonate-Uid", "")],
            [ImpersonationRequest(USER, "bob")],
            id="empty-uid",
        ),
    ],
)
def test_parse_headers(pairs: list[tuple[str, str]], expected: list[ImpersonationRequest]) -> None:
    assert parse_impersonation_headers(headers(*pairs)) == expected


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        pytest.param(
            [("Impersonate-Group", "bar")],
            "requested [{Group  bar    }] without impersonating a user",
            id="group",
        ),
        pytest.param(
            [("Impersonate-User", ""), ("Impersonate-Group", "a"), ("Impersonate-Group", "b")],
            "requested [{Group  a    } {Group  b    }] without impersonating a user",
            id="empty-user-and-groups",
        ),
        pytest.param(
            [("Impersonate-Extra-Scopes", "view"), ("Impersonate-Uid", "1234")],
            "requested [{UserExtra  view  authentication.k8s.io/v1  scopes}"
            " {UID  1234  authentication.k8s.io/v1  }] without impersonating a user",
            id="extra-and-uid",
        ),
        pytest.param(
            [("Impersonate-Uid", "1234")],
            "requested [{UID  1234  authentication.k8s.io/v1  }] without impersonating a user",
            id="uid",
        ),
    ],
)
def test_requests_without_a_user(pairs: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(ImpersonationHeaderError) as caught:
        parse_impersonation_headers(headers(*pairs))
    assert str(caught.value) == message


# --- the resulting user ------------------------------------------------------------------------

SA_DEMO = ImpersonationRequest(SA, "hpa", "demo")
SA_GROUPS = ["system:serviceaccounts", "system:serviceaccounts:demo"]


@pytest.mark.parametrize(
    ("requests", "expected"),
    [
        pytest.param(
            [ImpersonationRequest(USER, "bob")],
            UserInfo("bob", groups=["system:authenticated"]),
            id="user",
        ),
        pytest.param(
            [SA_DEMO],
            UserInfo("system:serviceaccount:demo:hpa", groups=[*SA_GROUPS, "system:authenticated"]),
            id="service-account-groups",
        ),
        pytest.param(
            [SA_DEMO, ImpersonationRequest(GROUP, "extra-group")],
            UserInfo(
                "system:serviceaccount:demo:hpa",
                groups=["extra-group", "system:authenticated"],
            ),
            id="service-account-groups-given",
        ),
        pytest.param(
            [
                ImpersonationRequest(USER, "bob"),
                ImpersonationRequest(GROUP, "system:authenticated"),
            ],
            UserInfo("bob", groups=["system:authenticated"]),
            id="authenticated-given",
        ),
        pytest.param(
            [
                ImpersonationRequest(USER, "bob"),
                ImpersonationRequest(GROUP, "system:unauthenticated"),
            ],
            UserInfo("bob", groups=["system:unauthenticated"]),
            id="unauthenticated-given",
        ),
        pytest.param(
            [ImpersonationRequest(USER, "system:anonymous")],
            UserInfo("system:anonymous", groups=["system:unauthenticated"]),
            id="anonymous",
        ),
        pytest.param(
            [
                ImpersonationRequest(USER, "system:anonymous"),
                ImpersonationRequest(GROUP, "system:authenticated"),
            ],
            UserInfo("system:anonymous", groups=["system:authenticated", "system:unauthenticated"]),
            id="anonymous-with-authenticated",
        ),
        pytest.param(
            [
                ImpersonationRequest(USER, "system:anonymous"),
                ImpersonationRequest(GROUP, "system:unauthenticated"),
            ],
            UserInfo("system:anonymous", groups=["system:unauthenticated"]),
            id="anonymous-unauthenticated-given",
        ),
        pytest.param(
            [
                ImpersonationRequest(USER, "bob"),
                ImpersonationRequest(EXTRA, "a", api_version=AUTHN_V1, field_path="scopes"),
                ImpersonationRequest(EXTRA, "b", api_version=AUTHN_V1, field_path="scopes"),
                ImpersonationRequest(EXTRA, "x", api_version=AUTHN_V1, field_path="team"),
                ImpersonationRequest(UID, "1234", api_version=AUTHN_V1),
            ],
            UserInfo(
                "bob",
                uid="1234",
                groups=["system:authenticated"],
                extra={"scopes": ["a", "b"], "team": ["x"]},
            ),
            id="extras-and-uid",
        ),
    ],
)
def test_impersonated_user(requests: list[ImpersonationRequest], expected: UserInfo) -> None:
    user = impersonated_user(requests)
    assert user == expected
    assert list(user.groups) == list(expected.groups)  # order too


# --- the filter --------------------------------------------------------------------------------


@dataclass
class PolicySAR:
    """A SubjectAccessReview endpoint: allows the (user, resource, name) triples given."""

    allowed: set[tuple[str, str, str]] = field(default_factory=set)
    reason: str = ""
    fail: bool = False
    specs: list[Mapping[str, Any]] = field(default_factory=list)

    async def create_token_review(
        self, token: str, audiences: Sequence[str] = ()
    ) -> dict[str, Any]:
        raise AssertionError("no token reviews here")

    async def create_subject_access_review(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        self.specs.append(spec)
        if self.fail:
            raise ConnectionRefusedError("subjectaccessreviews: connection refused")
        attributes = spec.get("resourceAttributes") or spec.get("nonResourceAttributes") or {}
        key = (
            spec.get("user", ""),
            attributes.get("resource") or attributes.get("path", ""),
            attributes.get("name", ""),
        )
        if key in self.allowed or (key[0], key[1], "*") in self.allowed:
            return {"allowed": True, "reason": "allowed by the test policy"}
        return {"allowed": False, "reason": self.reason}


def union(sar: PolicySAR) -> UnionAuthorizer:
    """The server's authorizer chain around `sar`."""
    return UnionAuthorizer(
        AlwaysAllowGroups(),
        AlwaysAllowPaths(["/healthz"]),
        SubjectAccessReviewAuthorizer(sar),
    )


def as_user(user: UserInfo | None) -> Middleware:
    """Stands in for the authentication filter."""

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if user is not None:
            request[USER_KEY] = user
        return await handler(request)

    return authenticate


async def echo(request: web.Request) -> web.Response:
    user = request[USER_KEY]
    return web.json_response(
        {
            "user": user.name,
            "uid": user.uid,
            "groups": list(user.groups),
            "extra": {key: list(values) for key, values in user.extra.items()},
            "headers": sorted(h.lower() for h in request.headers),
        }
    )


def app_with(authorizer: Authorizer, user: UserInfo | None = ALICE) -> web.Application:
    app = web.Application(middlewares=[as_user(user), impersonation_middleware(authorizer)])
    app.router.add_get("/x", echo)
    app.router.add_get(METRIC, echo)
    return app


def resource_spec(user: UserInfo, **attributes: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"user": user.name, "groups": list(user.groups)}
    spec["resourceAttributes"] = {"verb": "impersonate", **attributes}
    return spec


async def test_no_headers_pass_through_untouched(aiohttp_client: ClientFactory) -> None:
    sar = PolicySAR()
    client = await aiohttp_client(app_with(union(sar)))
    response = await client.get("/x", headers={"X-Custom": "1"})
    assert response.status == 200
    body = await response.json()
    assert body["user"] == "alice" and body["groups"] == ["devs", "system:authenticated"]
    assert "x-custom" in body["headers"]
    assert sar.specs == []


async def test_impersonated_user_reaches_the_handler(aiohttp_client: ClientFactory) -> None:
    sar = PolicySAR(
        allowed={
            ("alice", "users", "bob"),
            ("alice", "groups", "*"),
            ("alice", "userextras", "*"),
            ("alice", "uids", "1234"),
        }
    )
    client = await aiohttp_client(app_with(union(sar)))
    response = await client.get(
        "/x",
        headers=CIMultiDict(
            [
                ("Impersonate-User", "bob"),
                ("Impersonate-Group", "readers"),
                ("Impersonate-Group", "writers"),
                ("Impersonate-Extra-Scopes", "view"),
                ("Impersonate-Extra-example.org%2Fteam", "blue"),
                ("Impersonate-Uid", "1234"),
                ("X-Custom", "kept"),
            ]
        ),
    )
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["user"] == "bob" and body["uid"] == "1234"
    assert body["groups"] == ["readers", "writers", "system:authenticated"]
    assert body["extra"] == {"scopes": ["view"], "example.org/team": ["blue"]}
    assert not [h for h in body["headers"] if h.startswith("impersonate-")]
    assert "x-custom" in body["headers"]
    auth_v1 = {"group": "authentication.k8s.io", "version": "v1"}
    assert sar.specs == [
        resource_spec(ALICE, resource="users", name="bob"),
        resource_spec(ALICE, resource="groups", name="readers"),
        resource_spec(ALICE, resource="groups", name="writers"),
        resource_spec(ALICE, **auth_v1, resource="userextras", subresource="scopes", name="view"),
        resource_spec(
            ALICE, **auth_v1, resource="userextras", subresource="example.org/team", name="blue"
        ),
        resource_spec(ALICE, **auth_v1, resource="uids", name="1234"),
    ]


async def test_service_account_check_is_namespaced(aiohttp_client: ClientFactory) -> None:
    sar = PolicySAR(allowed={("alice", "serviceaccounts", "hpa")})
    client = await aiohttp_client(app_with(union(sar)))
    response = await client.get(
        "/x", headers={"Impersonate-User": "system:serviceaccount:demo:hpa"}
    )
    assert response.status == 200
    body = await response.json()
    assert body["user"] == "system:serviceaccount:demo:hpa"
    assert body["groups"] == [*SA_GROUPS, "system:authenticated"]
    assert sar.specs == [
        resource_spec(ALICE, namespace="demo", resource="serviceaccounts", name="hpa")
    ]


async def test_system_masters_skip_the_review(aiohttp_client: ClientFactory) -> None:
    sar = PolicySAR()
    client = await aiohttp_client(app_with(union(sar), ADMIN))
    response = await client.get(
        "/x", headers={"Impersonate-User": "bob", "Impersonate-Group": "system:masters"}
    )
    assert response.status == 200
    assert (await response.json())["groups"] == ["system:masters", "system:authenticated"]
    assert sar.specs == []


async def test_reviews_are_cached(aiohttp_client: ClientFactory) -> None:
    sar = PolicySAR(allowed={("alice", "users", "bob")})
    client = await aiohttp_client(app_with(union(sar)))
    for _ in range(3):
        response = await client.get("/x", headers={"Impersonate-User": "bob"})
        assert response.status == 200
    assert len(sar.specs) == 1
    for _ in range(2):  # denials are cached too
        response = await client.get("/x", headers={"Impersonate-User": "carol"})
        assert response.status == 403
    assert len(sar.specs) == 2


def forbidden(message: str, details: dict[str, str]) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "Forbidden",
        "details": details,
        "code": 403,
    }


@pytest.mark.parametrize(
    ("pairs", "allowed", "body"),
    [
        pytest.param(
            [("Impersonate-User", "bob")],
            set(),
            forbidden(
                'users "bob" is forbidden: User "alice" cannot impersonate resource "users" in API group "" at the cluster scope',
                {"name": "bob", "kind": "users"},
            ),
            id="user",
        ),
        pytest.param(
            [("Impersonate-User", "system:serviceaccount:demo:hpa")],
            set(),
            forbidden(
                'serviceaccounts "hpa" is forbidden: User "alice" cannot impersonate resource "serviceaccounts" in API group "" in the namespace "demo"',
                {"name": "hpa", "kind": "serviceaccounts"},
            ),
            id="service-account",
        ),
        pytest.param(
            [("Impersonate-User", "bob"), ("Impersonate-Group", "ops"), ("Impersonate-Group", "x")],
            {("alice", "users", "bob")},
            forbidden(
                'groups "ops" is forbidden: User "alice" cannot impersonate resource "groups" in API group "" at the cluster scope',
                {"name": "ops", "kind": "groups"},
            ),
            id="group",
        ),
        pytest.param(
            [("Impersonate-User", "bob"), ("Impersonate-Extra-Example.org%2FScopes", "<view>")],
            {("alice", "users", "bob")},
            forbidden(
                'userextras.authentication.k8s.io "<view>" is forbidden: User "alice" cannot impersonate resource "userextras/example.org/scopes" in API group "authentication.k8s.io" at the cluster scope',
                {"name": "<view>", "group": "authentication.k8s.io", "kind": "userextras"},
            ),
            id="user-extra",
        ),
        pytest.param(
            [("Impersonate-User", "bob"), ("Impersonate-Uid", "1234")],
            {("alice", "users", "bob")},
            forbidden(
                'uids.authentication.k8s.io "1234" is forbidden: User "alice" cannot impersonate resource "uids" in API group "authentication.k8s.io" at the cluster scope',
                {"name": "1234", "group": "authentication.k8s.io", "kind": "uids"},
            ),
            id="uid",
        ),
    ],
)
async def test_forbidden_bodies(
    aiohttp_client: ClientFactory,
    pairs: list[tuple[str, str]],
    allowed: set[tuple[str, str, str]],
    body: dict[str, Any],
) -> None:
    sar = PolicySAR(allowed=allowed)
    client = await aiohttp_client(app_with(union(sar)))
    response = await client.get("/x", headers=CIMultiDict(pairs))
    assert response.status == 403
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert orjson.loads(await response.read()) == body
    # The first refusal ends the checks.
    assert len(sar.specs) == len(allowed) + 1


async def test_denial_reason_is_appended(aiohttp_client: ClientFactory) -> None:
    sar = PolicySAR(reason="no RBAC policy matched")
    client = await aiohttp_client(app_with(union(sar)))
    response = await client.get("/x", headers={"Impersonate-User": "bob"})
    assert (await response.json())["message"] == (
        'users "bob" is forbidden: User "alice" cannot impersonate resource "users" in API group "" at the cluster scope: no RBAC policy matched'
    )


async def test_authorizer_error_is_forbidden(aiohttp_client: ClientFactory) -> None:
    # Unlike the authorization filter (500), impersonation answers 403 when no decision came.
    sar = PolicySAR(fail=True)
    client = await aiohttp_client(app_with(union(sar)))
    response = await client.get("/x", headers={"Impersonate-User": "bob"})
    assert response.status == 403
    assert (await response.json())["message"].endswith("at the cluster scope")


class Explicit:
    """Denies groups explicitly, cannot decide on uids, allows the rest."""

    async def authorize(self, attributes: Attributes) -> Decision:
        if attributes.request.resource == "groups":
            return Decision(False, "denied by policy", denied=True)
        if attributes.request.resource == "uids":
            raise AuthorizationError("boom")
        return Decision(True)


async def test_explicit_deny_is_forbidden(aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(app_with(Explicit()))
    response = await client.get("/x", headers={"Impersonate-User": "bob", "Impersonate-Group": "g"})
    assert response.status == 403
    assert (await response.json())["message"].endswith(": denied by policy")
    response = await client.get("/x", headers={"Impersonate-User": "bob", "Impersonate-Uid": "1"})
    assert response.status == 403
    assert (await response.json())["details"] == {
        "name": "1",
        "group": "authentication.k8s.io",
        "kind": "uids",
    }


async def test_groups_without_user_are_a_500(aiohttp_client: ClientFactory) -> None:
    sar = PolicySAR()
    client = await aiohttp_client(app_with(union(sar)))
    response = await client.get("/x?a=1", headers={"Impersonate-Group": "bar"})
    assert response.status == 500
    assert response.content_type == "text/plain"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert await response.text() == (
        'Internal Server Error: "/x?a=1": requested [{Group  bar    }] without impersonating a user\n'
    )
    assert sar.specs == []


async def test_without_authenticated_user_is_a_500(aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(app_with(Explicit(), user=None))
    response = await client.get("/x", headers={"Impersonate-User": "bob"})
    assert response.status == 500
    assert await response.text() == 'Internal Server Error: "/x": no user found for request\n'


# --- in the chain, with audit ------------------------------------------------------------------


class Recorder:
    name = "recorder"

    def __init__(self) -> None:
        self.events: list[Event] = []

    def start(self) -> None:
        pass

    async def process(self, events: Sequence[Event]) -> bool:
        self.events.extend(events)
        return True

    async def shutdown(self) -> None:
        pass


POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: Metadata
"""


def chain_app(sar: PolicySAR, auditor: Auditor | None) -> web.Application:
    authorizer = union(sar)
    chain = audit_chain(
        auditor,
        as_user(ALICE),
        authorization_middleware(audit_decisions(auditor, authorizer)),
        impersonation=impersonation_middleware(authorizer),
    )
    app = web.Application(middlewares=chain)
    app.router.add_get(METRIC, echo)
    return app


def test_chain_order() -> None:
    authn, authz, imp = as_user(ALICE), as_user(ADMIN), as_user(None)
    assert audit_chain(None, authn, authz, impersonation=imp) == [authn, imp, authz]
    auditor = Auditor(parse_policy(POLICY), Recorder(), AuditMetrics(CollectorRegistry()))
    chain = audit_chain(auditor, authn, authz, impersonation=imp)
    assert chain[1] is authn and chain[3:] == [imp, authz]


@pytest.mark.parametrize("audited", [False, True])
async def test_authorization_sees_the_impersonated_user(
    aiohttp_client: ClientFactory, audited: bool
) -> None:
    sar = PolicySAR(allowed={("alice", "users", "bob"), ("bob", "pods", "*")})
    recorder = Recorder()
    auditor = (
        Auditor(parse_policy(POLICY), recorder, AuditMetrics(CollectorRegistry()))
        if audited
        else None
    )
    client = await aiohttp_client(chain_app(sar, auditor))
    response = await client.get(METRIC, headers={"Impersonate-User": "bob"})
    assert response.status == 200, await response.text()
    assert (await response.json())["user"] == "bob"
    assert sar.specs[-1] == {
        "user": "bob",
        "groups": ["system:authenticated"],
        "resourceAttributes": {
            "namespace": "demo",
            "verb": "get",
            "group": "custom.metrics.k8s.io",
            "version": "v1beta2",
            "resource": "pods",
            "subresource": "http_requests",
            "name": "*",
        },
    }
    # alice may not impersonate carol; dave she may, but dave is refused the metric.
    response = await client.get(METRIC, headers={"Impersonate-User": "carol"})
    assert response.status == 403
    sar.allowed.add(("alice", "users", "dave"))
    response = await client.get(METRIC, headers={"Impersonate-User": "dave"})
    assert response.status == 403
    assert (await response.json())["message"].startswith(
        'pods.custom.metrics.k8s.io "*" is forbidden: User "dave" cannot get resource'
    )
    if not audited:
        return
    received, complete = (orjson.loads(e.json) for e in recorder.events[:2])
    assert received["stage"] == "RequestReceived" and "impersonatedUser" not in received
    assert complete["stage"] == "ResponseComplete"
    assert complete["user"] == {"username": "alice", "groups": ["devs", "system:authenticated"]}
    assert complete["impersonatedUser"] == {"username": "bob", "groups": ["system:authenticated"]}
    assert list(complete)[list(complete).index("user") + 1] == "impersonatedUser"
    # The annotations are the authorization filter's decision, not the impersonation check's.
    assert complete["annotations"]["authorization.k8s.io/decision"] == "allow"
    assert complete["annotations"]["authorization.k8s.io/reason"] == "allowed by the test policy"
    refused = [orjson.loads(e.json) for e in recorder.events[2:4]]
    assert refused[1]["responseStatus"]["code"] == 403
    assert "impersonatedUser" not in refused[1] and "annotations" not in refused[1]


# --- the event ---------------------------------------------------------------------------------


@pytest.fixture
def utc() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "UTC")
        time.tzset()
        yield
    time.tzset()


def impersonated_event() -> Event:
    return Event(
        level=Level.METADATA,
        audit_id="id-1",
        stage=Stage.RESPONSE_COMPLETE,
        request_uri="/x",
        verb="get",
        user=ALICE,
        source_ips=("127.0.0.1",),
        user_agent="",
        object_ref=None,
        request_received_ns=1714557600_000000000,
        stage_ns=1714557600_000000000,
        impersonated_user=UserInfo(
            "bob", uid="1234", groups=("g<1>", "system:authenticated"), extra={"k": ["v"]}
        ),
    )


def test_event_json_has_impersonated_user() -> None:
    assert impersonated_event().json == (
        b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"id-1",'
        b'"stage":"ResponseComplete","requestURI":"/x","verb":"get",'
        b'"user":{"username":"alice","groups":["devs","system:authenticated"]},'
        b'"impersonatedUser":{"username":"bob","uid":"1234",'
        b'"groups":["g\\u003c1\\u003e","system:authenticated"],"extra":{"k":["v"]}},'
        b'"sourceIPs":["127.0.0.1"],'
        b'"requestReceivedTimestamp":"2024-05-01T10:00:00.000000Z",'
        b'"stageTimestamp":"2024-05-01T10:00:00.000000Z"}'
    )


@pytest.mark.usefixtures("utc")
def test_legacy_line_names_the_impersonated_user() -> None:
    assert legacy_line(impersonated_event()) == (
        '2024-05-01T10:00:00Z AUDIT: id="id-1" stage="ResponseComplete" ip="127.0.0.1" '
        'method="get" user="alice" groups="\\"devs\\",\\"system:authenticated\\"" '
        'as="bob" asgroups="\\"g<1>\\",\\"system:authenticated\\"" user-agent="" '
        'namespace="<none>" uri="/x" response="<deferred>"'
    )
