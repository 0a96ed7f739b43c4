"""The audit Event as Go writes it: JSON field order, omitempty, escaping, MicroTime; the legacy
line; sourceIPs and the user agent as k8s.io/apiserver derives them."""

import time
from collections.abc import Iterator

import orjson
import pytest

from adapter.audit.event import (
    Event,
    ObjectReference,
    event_list_json,
    legacy_line,
    micro_time,
    object_reference,
    response_status,
    source_ips,
    truncate_user_agent,
)
from adapter.audit.levels import Level, Stage
from adapter.auth.request_info import new_request_info
from adapter.auth.user import UserInfo

HPA = UserInfo(
    "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
    uid="6a3d1c9e-2b44-4f0e-9a55-0f4a7d1b2c3d",
    groups=("system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"),
    extra={
        "authentication.kubernetes.io/pod-name": ["kcm-0"],
        "authentication.kubernetes.io/credential-id": ["JTI=abc"],
    },
)
RECEIVED = 1714557600_123456789  # 2024-05-01T10:00:00.123456789Z
DONE = 1714557600_130001999
URI = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/demo/pods/%2A/http_requests?labelSelector=app%3Dweb"
REASON = 'RBAC: allowed by ClusterRoleBinding "hpa-metrics" of ClusterRole "custom-metrics-reader"'

# What kube-apiserver's log backend writes for this request (k8s.io/apiserver v0.30: the
# field order of audit/v1 types.go, omitempty fields left out, map keys sorted), one line.
GO_SAMPLE = (
    b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata",'
    b'"auditID":"1c4e6d5f-0b7a-4a39-8f11-5e0e0c7d9b21","stage":"ResponseComplete",'
    b'"requestURI":"/apis/custom.metrics.k8s.io/v1beta2/namespaces/demo/pods/%2A/http_requests?labelSelector=app%3Dweb",'
    b'"verb":"get",'
    b'"user":{"username":"system:serviceaccount:kube-system:horizontal-pod-autoscaler",'
    b'"uid":"6a3d1c9e-2b44-4f0e-9a55-0f4a7d1b2c3d",'
    b'"groups":["system:serviceaccounts","system:serviceaccounts:kube-system","system:authenticated"],'
    b'"extra":{"authentication.kubernetes.io/credential-id":["JTI=abc"],"authentication.kubernetes.io/pod-name":["kcm-0"]}},'
    b'"sourceIPs":["10.0.0.7","172.18.0.2"],'
    b'"userAgent":"kube-controller-manager/v1.30.0 (linux/amd64) kubernetes/7c48c2b/system:serviceaccount:kube-system:horizontal-pod-autoscaler",'
    b'"objectRef":{"resource":"pods","namespace":"demo","name":"*","apiGroup":"custom.metrics.k8s.io","apiVersion":"v1beta2","subresource":"http_requests"},'
    b'"responseStatus":{"metadata":{},"code":200},'
    b'"requestReceivedTimestamp":"2024-05-01T10:00:00.123456Z",'
    b'"stageTimestamp":"2024-05-01T10:00:00.130001Z",'
    b'"annotations":{"authorization.k8s.io/decision":"allow",'
    b'"authorization.k8s.io/reason":"RBAC: allowed by ClusterRoleBinding \\"hpa-metrics\\" of ClusterRole \\"custom-metrics-reader\\""}}'
)


def sample_event(**changes: object) -> Event:
    fields: dict[str, object] = {
        "level": Level.METADATA,
        "audit_id": "1c4e6d5f-0b7a-4a39-8f11-5e0e0c7d9b21",
        "stage": Stage.RESPONSE_COMPLETE,
        "request_uri": URI,
        "verb": "get",
        "user": HPA,
        "source_ips": ("10.0.0.7", "172.18.0.2"),
        "user_agent": "kube-controller-manager/v1.30.0 (linux/amd64) kubernetes/7c48c2b/"
        "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
        "object_ref": object_reference(
            new_request_info(
                "GET", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/demo/pods/*/http_requests"
            )
        ),
        "request_received_ns": RECEIVED,
        "stage_ns": DONE,
        "response_status": {"metadata": {}, "code": 200},
        "annotations": {
            "authorization.k8s.io/reason": REASON,
            "authorization.k8s.io/decision": "allow",
        },
    }
    fields.update(changes)
    return Event(**fields)  # type: ignore[arg-type]


def test_json_is_byte_for_byte_what_go_writes() -> None:
    assert sample_event().json == GO_SAMPLE


def test_omitempty_fields_are_left_out() -> None:
    event = sample_event(
        user=None,
        source_ips=(),
        user_agent="",
        object_ref=None,
        response_status=None,
        annotations={},
        stage=Stage.REQUEST_RECEIVED,
        stage_ns=RECEIVED,
        verb="get",
        request_uri="/version",
    )
    assert orjson.loads(event.json) == {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": "1c4e6d5f-0b7a-4a39-8f11-5e0e0c7d9b21",
        "stage": "RequestReceived",
        "requestURI": "/version",
        "verb": "get",
        "user": {},
        "requestReceivedTimestamp": "2024-05-01T10:00:00.123456Z",
        "stageTimestamp": "2024-05-01T10:00:00.123456Z",
    }
    # An unnamed user has an empty object, not a missing field (`json:"user"`).
    assert b'"user":{}' in event.json


def test_forbidden_status_and_go_html_escaping() -> None:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'forbidden: User "bob" cannot get path "/apis/x&lt;y"',
        "reason": "Forbidden",
        "details": {},
        "code": 403,
    }
    event = sample_event(
        response_status=response_status(403, body), annotations={"k": "a<b>&c\u2028"}
    )
    assert (
        b'"responseStatus":{"metadata":{},"status":"Failure",'
        b'"message":"forbidden: User \\"bob\\" cannot get path \\"/apis/x\\u0026lt;y\\"",'
        b'"reason":"Forbidden","details":{},"code":403}'
    ) in event.json
    assert b'"annotations":{"k":"a\\u003cb\\u003e\\u0026c\\u2028"}' in event.json


def test_response_status_takes_the_code_sent_and_only_status_fields() -> None:
    assert response_status(200, {"kind": "MetricValueList", "items": []}) == {
        "metadata": {},
        "code": 200,
    }
    assert response_status(500, None) == {"metadata": {}, "code": 500}
    unauthorized = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }
    assert list(response_status(401, unauthorized).items()) == [
        ("metadata", {}),
        ("status", "Failure"),
        ("message", "Unauthorized"),
        ("reason", "Unauthorized"),
        ("code", 401),
    ]


def test_response_object_is_embedded_raw() -> None:
    raw = b'{"kind":"MetricValueList","apiVersion":"custom.metrics.k8s.io/v1beta2","metadata":{},"items":[]}'
    event = sample_event(level=Level.REQUEST_RESPONSE, response_object=raw)
    assert (
        b'"responseStatus":{"metadata":{},"code":200},"responseObject":'
        + raw
        + b',"requestReceivedTimestamp"'
        in event.json
    )


def test_undecodable_header_bytes_become_replacement_characters() -> None:
    user_agent = b"curl/\xff".decode("utf-8", "surrogateescape")
    assert orjson.loads(sample_event(user_agent=user_agent).json)["userAgent"] == "curl/\ufffd"


def test_truncated_copy_drops_the_object_and_says_so() -> None:
    event = sample_event(level=Level.REQUEST_RESPONSE, response_object=b'{"kind":"X"}')
    truncated = event.truncated()
    assert truncated.response_object is None
    assert truncated.annotations["audit.k8s.io/truncated"] == "true"
    assert event.response_object is not None and "audit.k8s.io/truncated" not in event.annotations


def test_event_list() -> None:
    events = [sample_event(), sample_event(stage=Stage.REQUEST_RECEIVED)]
    doc = orjson.loads(event_list_json(events))
    assert list(doc) == ["kind", "apiVersion", "metadata", "items"]
    assert (
        doc["kind"] == "EventList"
        and doc["apiVersion"] == "audit.k8s.io/v1"
        and doc["metadata"] == {}
    )
    assert [item["stage"] for item in doc["items"]] == ["ResponseComplete", "RequestReceived"]
    assert orjson.loads(event_list_json([])) == {
        "kind": "EventList",
        "apiVersion": "audit.k8s.io/v1",
        "metadata": {},
        "items": [],
    }


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "1970-01-01T00:00:00.000000Z"),
        (1714557600_000000999, "2024-05-01T10:00:00.000000Z"),
        (1714557600_999999999, "2024-05-01T10:00:00.999999Z"),
    ],
)
def test_micro_time(ns: int, text: str) -> None:
    assert micro_time(ns) == text


@pytest.fixture
def utc() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "UTC")
        time.tzset()
        yield
    time.tzset()


@pytest.mark.usefixtures("utc")
def test_legacy_line_is_go_event_string() -> None:
    assert legacy_line(sample_event()) == (
        '2024-05-01T10:00:00.123456789Z AUDIT: id="1c4e6d5f-0b7a-4a39-8f11-5e0e0c7d9b21" '
        'stage="ResponseComplete" ip="10.0.0.7" method="get" '
        'user="system:serviceaccount:kube-system:horizontal-pod-autoscaler" '
        'groups="\\"system:serviceaccounts\\",\\"system:serviceaccounts:kube-system\\",\\"system:authenticated\\"" '
        'as="<self>" asgroups="<lookup>" '
        'user-agent="kube-controller-manager/v1.30.0 (linux/amd64) kubernetes/7c48c2b/system:serviceaccount:kube-system:horizontal-pod-autoscaler" '
        'namespace="demo" '
        f'uri="{URI}" response="200"'
    )
    bare = sample_event(
        user=None,
        source_ips=(),
        object_ref=None,
        response_status=None,
        user_agent="",
        request_received_ns=1714557600_000000000,
    )
    assert legacy_line(bare) == (
        '2024-05-01T10:00:00Z AUDIT: id="1c4e6d5f-0b7a-4a39-8f11-5e0e0c7d9b21" stage="ResponseComplete" '
        'ip="<unknown>" method="get" user="<none>" groups="<none>" as="<self>" asgroups="<lookup>" '
        f'user-agent="" namespace="<none>" uri="{URI}" response="<deferred>"'
    )


@pytest.mark.parametrize(
    ("forwarded_for", "real_ip", "remote", "expected"),
    [
        (None, None, "10.0.0.1", ("10.0.0.1",)),
        ("1.2.3.4", None, "10.0.0.1", ("1.2.3.4", "10.0.0.1")),
        ("1.2.3.4, 5.6.7.8", None, "5.6.7.8", ("1.2.3.4", "5.6.7.8")),  # no repeat of the last
        ("1.2.3.4,junk, ,5.6.7.8", None, "10.0.0.1", ("1.2.3.4", "5.6.7.8", "10.0.0.1")),
        ("1.2.3.4", "1.2.3.4", "10.0.0.1", ("1.2.3.4", "10.0.0.1")),  # X-Real-Ip already there
        ("1.2.3.4", "9.9.9.9", "10.0.0.1", ("1.2.3.4", "9.9.9.9", "10.0.0.1")),
        (None, "not-an-ip", "10.0.0.1", ("10.0.0.1",)),
        ("010.000.000.001", None, "::1", ("10.0.0.1", "::1")),  # ParseIPSloppy: leading zeros
        ("::ffff:1.2.3.4", None, "2001:DB8:0:0:0:0:0:1", ("1.2.3.4", "2001:db8::1")),
        ("fe80::1%eth0, 256.1.1.1", None, None, ()),
    ],
)
def test_source_ips(
    forwarded_for: str | None, real_ip: str | None, remote: str | None, expected: tuple[str, ...]
) -> None:
    assert source_ips(forwarded_for, real_ip, remote) == expected


def test_user_agent_is_truncated_after_1024_bytes() -> None:
    assert truncate_user_agent("kubectl/v1.30") == "kubectl/v1.30"
    assert truncate_user_agent("a" * 1024) == "a" * 1024
    assert truncate_user_agent("a" * 1025) == "a" * 1024 + "...TRUNCATED"
    # A multi-byte character cut in two becomes U+FFFD, as Go's encoder writes it.
    assert truncate_user_agent("a" * 1023 + "é") == "a" * 1023 + "\ufffd...TRUNCATED"


def test_object_reference_only_for_resource_requests() -> None:
    assert object_reference(new_request_info("GET", "/apis/custom.metrics.k8s.io/v1beta2")) is None
    ref = object_reference(
        new_request_info("GET", "/apis/external.metrics.k8s.io/v1beta1/namespaces/demo/queue_depth")
    )
    assert ref == ObjectReference(
        resource="queue_depth",
        namespace="demo",
        api_group="external.metrics.k8s.io",
        api_version="v1beta1",
    )
    assert ref is not None and ref.as_json() == {
        "resource": "queue_depth",
        "namespace": "demo",
        "apiGroup": "external.metrics.k8s.io",
        "apiVersion": "v1beta1",
    }
