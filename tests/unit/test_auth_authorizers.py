"""Authorizers: ports of k8s's path_test.go, union_test.go, builtin_test.go and the SAR
webhook's TestV1Webhook/TestV1WebhookCache."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from adapter.auth.authorizers import (
    AlwaysAllowGroups,
    AlwaysAllowPaths,
    Attributes,
    AuthorizationError,
    Decision,
    SubjectAccessReviewAuthorizer,
    UnionAuthorizer,
    subject_access_review_spec,
)
from adapter.auth.request_info import RequestInfo, new_request_info
from adapter.auth.user import UserInfo
from adapter.kube.api import KubeAPIError

ALICE = UserInfo(
    "alice", uid="u-1", groups=("devs", "system:authenticated"), extra={"scopes": ("a", "b")}
)


def path_attrs(path: str, user: UserInfo = ALICE) -> Attributes:
    return Attributes(user, RequestInfo(is_resource_request=False, path=path, verb="get"))


def resource_attrs(user: UserInfo = ALICE) -> Attributes:
    return Attributes(
        user,
        new_request_info(
            "GET", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/*/http_requests"
        ),
    )


# --- path_test.go ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allowed", "allow", "no_opinion"),
    [
        pytest.param(["/"], ["/", ""], ["/foo"], id="inclusive"),
        pytest.param(
            ["/foo"], ["/foo", "foo"], ["/", "", "/bar", "/foo/", "/fooooo", "/foo/bar"], id="exact"
        ),
        pytest.param(
            ["/foo*"], ["/foo", "/foo/", "/foooo", "/foo/bar"], ["/", "/bar", "/fo"], id="prefix"
        ),
        pytest.param(
            ["/foo/*"], ["/foo/", "/foo/bar"], ["/", "/bar", "/foo", "/fooooo"], id="prefix-slash"
        ),
        pytest.param(
            ["/healthz", "/readyz", "/livez"],
            ["/healthz", "/livez", "/readyz"],
            ["/readyz/shutdown", "/metrics", "/healthz/ping"],
            id="defaults",
        ),
        pytest.param(["*"], ["/", "/anything/at/all"], [], id="everything"),
    ],
)
async def test_always_allow_paths(
    allowed: list[str], allow: list[str], no_opinion: list[str]
) -> None:
    authorizer = AlwaysAllowPaths(allowed)
    for path in allow:
        assert (await authorizer.authorize(path_attrs(path))).allowed, path
    for path in no_opinion:
        decision = await authorizer.authorize(path_attrs(path))
        assert decision == Decision(False), path


def test_always_allow_paths_rejects_inner_star() -> None:
    with pytest.raises(ValueError, match="only trailing"):
        AlwaysAllowPaths(["/*/foo"])


async def test_always_allow_paths_ignores_resource_requests() -> None:
    info = new_request_info("GET", "/api/v1/namespaces/default/pods")
    assert not (await AlwaysAllowPaths(["*"]).authorize(Attributes(ALICE, info))).allowed


async def test_always_allow_groups() -> None:
    masters = UserInfo("system:kube-aggregator", groups=("system:masters",))
    authorizer = AlwaysAllowGroups()
    assert (await authorizer.authorize(resource_attrs(masters))).allowed
    assert (await authorizer.authorize(path_attrs("/metrics", masters))).allowed
    assert await authorizer.authorize(resource_attrs(ALICE)) == Decision(False)
    assert (await AlwaysAllowGroups(("devs",)).authorize(resource_attrs(ALICE))).allowed


# --- union_test.go -----------------------------------------------------------------------------


@dataclass
class Fixed:
    decision: Decision | None = None
    error: str = ""
    calls: int = 0

    async def authorize(self, attributes: Attributes) -> Decision:
        self.calls += 1
        if self.error:
            raise AuthorizationError(self.error)
        assert self.decision is not None
        return self.decision


async def test_union_first_passes() -> None:
    second = Fixed(Decision(False))
    assert (await UnionAuthorizer(Fixed(Decision(True)), second).authorize(path_attrs("/"))).allowed
    assert second.calls == 0


async def test_union_second_passes() -> None:
    union = UnionAuthorizer(Fixed(Decision(False)), Fixed(Decision(True)))
    assert (await union.authorize(path_attrs("/"))).allowed


async def test_union_none_pass_joins_reasons() -> None:
    union = UnionAuthorizer(
        Fixed(Decision(False, "one")), Fixed(Decision(False)), Fixed(Decision(False, "two"))
    )
    assert await union.authorize(path_attrs("/")) == Decision(False, "one\ntwo")


async def test_union_unequivocal_deny() -> None:
    third = Fixed(Decision(True))
    union = UnionAuthorizer(
        Fixed(Decision(False)), Fixed(Decision(False, "no", denied=True)), third
    )
    assert await union.authorize(path_attrs("/")) == Decision(False, "no", denied=True)
    assert third.calls == 0


async def test_union_error_then_allow_and_error_alone() -> None:
    assert (
        await UnionAuthorizer(Fixed(error="boom"), Fixed(Decision(True))).authorize(path_attrs("/"))
    ).allowed
    with pytest.raises(AuthorizationError, match="boom"):
        await UnionAuthorizer(Fixed(Decision(False)), Fixed(error="boom")).authorize(
            path_attrs("/")
        )


# --- SubjectAccessReview -----------------------------------------------------------------------


def test_sar_spec_resource() -> None:
    assert subject_access_review_spec(resource_attrs()) == {
        "user": "alice",
        "groups": ["devs", "system:authenticated"],
        "extra": {"scopes": ["a", "b"]},
        "uid": "u-1",
        "resourceAttributes": {
            "namespace": "default",
            "verb": "get",
            "group": "custom.metrics.k8s.io",
            "version": "v1beta2",
            "resource": "pods",
            "subresource": "http_requests",
            "name": "*",
        },
    }


def test_sar_spec_non_resource_and_empty_fields_omitted() -> None:
    assert subject_access_review_spec(
        path_attrs("/apis/custom.metrics.k8s.io/v1beta2", UserInfo("bob"))
    ) == {
        "user": "bob",
        "nonResourceAttributes": {"path": "/apis/custom.metrics.k8s.io/v1beta2", "verb": "get"},
    }
    external = new_request_info("GET", "/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/m")
    assert subject_access_review_spec(Attributes(UserInfo("bob"), external))[
        "resourceAttributes"
    ] == {
        "namespace": "ns",
        "verb": "list",
        "group": "external.metrics.k8s.io",
        "version": "v1beta1",
        "resource": "m",
    }


@dataclass
class FakeSAR:
    allowed: bool = False
    denied: bool = False
    reason: str = ""
    fail: BaseException | None = None
    specs: list[Mapping[str, Any]] = field(default_factory=list)

    async def create_token_review(
        self, token: str, audiences: Sequence[str] = ()
    ) -> dict[str, Any]:
        raise NotImplementedError

    async def create_subject_access_review(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        self.specs.append(spec)
        if self.fail is not None:
            raise self.fail
        return {"allowed": self.allowed, "denied": self.denied, "reason": self.reason}


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


async def test_sar_decisions() -> None:
    assert await SubjectAccessReviewAuthorizer(FakeSAR(allowed=True, reason="rbac")).authorize(
        resource_attrs()
    ) == Decision(True, "rbac")
    assert await SubjectAccessReviewAuthorizer(FakeSAR(reason="nope")).authorize(
        resource_attrs()
    ) == Decision(False, "nope")
    assert await SubjectAccessReviewAuthorizer(FakeSAR(denied=True)).authorize(
        resource_attrs()
    ) == Decision(False, "", denied=True)
    with pytest.raises(AuthorizationError, match="both allow and deny"):
        await SubjectAccessReviewAuthorizer(FakeSAR(allowed=True, denied=True)).authorize(
            resource_attrs()
        )


async def test_sar_failure_raises_and_is_not_cached() -> None:
    sar = FakeSAR(fail=KubeAPIError(503, "ServiceUnavailable", "etcd is down"))
    authorizer = SubjectAccessReviewAuthorizer(sar)
    for _ in range(2):
        with pytest.raises(AuthorizationError, match="etcd is down"):
            await authorizer.authorize(resource_attrs())
    assert len(sar.specs) == 2


@pytest.mark.parametrize(
    ("allowed", "allowed_ttl", "denied_ttl", "expected_calls"),
    [
        # (after t+0, t+5, t+10.5): a 10 s TTL answers twice from cache, then asks again.
        pytest.param(True, 10.0, 1.0, 2, id="allowed-ttl"),
        pytest.param(False, 1.0, 10.0, 2, id="denied-ttl"),
        pytest.param(True, 1.0, 10.0, 3, id="allowed-short"),
        pytest.param(False, 10.0, 1.0, 3, id="denied-short"),
        pytest.param(True, 0.0, 0.0, 4, id="no-cache"),
    ],
)
async def test_sar_cache_ttls(
    allowed: bool, allowed_ttl: float, denied_ttl: float, expected_calls: int
) -> None:
    clock = Clock()
    sar = FakeSAR(allowed=allowed)
    authorizer = SubjectAccessReviewAuthorizer(
        sar, allowed_ttl=allowed_ttl, denied_ttl=denied_ttl, clock=clock
    )
    for step in (0.0, 0.5, 4.5, 5.5):
        clock.now += step
        assert (await authorizer.authorize(resource_attrs())).allowed is allowed
    assert len(sar.specs) == expected_calls


async def test_sar_cache_key_is_the_spec() -> None:
    sar = FakeSAR(allowed=True)
    authorizer = SubjectAccessReviewAuthorizer(sar)
    await authorizer.authorize(resource_attrs())
    await authorizer.authorize(
        resource_attrs(
            UserInfo(
                "alice",
                uid="u-1",
                groups=("devs", "system:authenticated"),
                extra={"scopes": ("a", "b")},
            )
        )
    )
    assert len(sar.specs) == 1
    await authorizer.authorize(resource_attrs(UserInfo("alice")))  # other groups: other entry
    await authorizer.authorize(path_attrs("/metrics"))
    assert len(sar.specs) == 3


async def test_sar_cache_is_bounded_lru() -> None:
    sar = FakeSAR(allowed=True)
    authorizer = SubjectAccessReviewAuthorizer(sar, max_entries=2)
    for path in ("/a", "/b", "/a", "/c", "/a", "/b"):
        await authorizer.authorize(path_attrs(path))
    # /a /b miss; /a hit; /c miss evicts /b; /a hit; /b miss.
    assert [s["nonResourceAttributes"]["path"] for s in sar.specs] == ["/a", "/b", "/c", "/b"]


async def test_sar_oversized_attributes_not_cached() -> None:
    sar = FakeSAR(allowed=True)
    authorizer = SubjectAccessReviewAuthorizer(sar)
    for _ in range(2):
        await authorizer.authorize(path_attrs("/" + "x" * 10000))
    assert len(sar.specs) == 2
