"""Content negotiation as k8s.io/apiserver's `negotiation` package and goautoneg do it."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapter.server.negotiation import (
    JSON,
    PROTOBUF,
    YAML,
    Conversion,
    Endpoint,
    Negotiated,
    negotiate,
    not_acceptable_message,
    parse_accept,
)

TABLE_V1 = Conversion("Table", "meta.k8s.io", "v1")
KUBECTL_GET = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,"
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)


def _order(header: str) -> list[str]:
    return [f"{c.type}/{c.subtype}" for c in parse_accept(header)]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("application/json", ["application/json"]),
        # q orders; equal q keeps the header's order (Go's insertion sort is stable).
        ("a/x;q=0.5, b/y", ["b/y", "a/x"]),
        ("a/x, b/y", ["a/x", "b/y"]),
        # A concrete type sorts before a wildcard, whatever the q (goautoneg's Less).
        ("*/*, a/x;q=0.1", ["a/x", "*/*"]),
        ("a/*, a/x", ["a/x", "a/*"]),
        # `*` alone is `*/*`; a range without a slash otherwise is dropped, as are 3 parts.
        ("*, text", ["*/*"]),
        ("a/b/c, a/b", ["a/b"]),
        # A q Go cannot parse is 0.
        ("a/x;q=high, b/y;q=0.2", ["b/y", "a/x"]),
        ("a/x;q= 0.9, b/y;q=0.2", ["b/y", "a/x"]),
    ],
)
def test_parse_accept_orders_like_goautoneg(header: str, expected: list[str]) -> None:
    assert _order(header) == expected


def test_parse_accept_keeps_parameters_and_q() -> None:
    (clause,) = parse_accept(" application/json ; as=Table ;v= v1;g=meta.k8s.io;q=0.5;bare")
    assert (clause.type, clause.subtype, clause.q) == ("application", "json", 0.5)
    assert dict(clause.params) == {"as": "Table", "v": "v1", "g": "meta.k8s.io"}


@pytest.mark.parametrize(
    ("header", "endpoint", "expected"),
    [
        ("", Endpoint.PLAIN, Negotiated(JSON)),
        ("application/json", Endpoint.PLAIN, Negotiated(JSON)),
        ("application/yaml", Endpoint.PLAIN, Negotiated(YAML)),
        ("application/*", Endpoint.PLAIN, Negotiated(JSON)),
        ("*/*", Endpoint.PLAIN, Negotiated(JSON)),
        ("application/json;pretty=1", Endpoint.PLAIN, Negotiated(JSON, pretty=True)),
        ("application/json;stream=watch", Endpoint.PLAIN, Negotiated(JSON)),
        # What the HPA controller sends: protobuf first; negotiated as in Go.
        ("application/vnd.kubernetes.protobuf, */*", Endpoint.PLAIN, Negotiated(PROTOBUF)),
        # kubectl get: a Table where the endpoint converts to one, JSON elsewhere.
        (KUBECTL_GET, Endpoint.CONVERTIBLE, Negotiated(JSON, convert=TABLE_V1)),
        (KUBECTL_GET, Endpoint.PLAIN, Negotiated(JSON)),
        (KUBECTL_GET, Endpoint.PLAIN, Negotiated(JSON)),
        (
            "application/yaml;as=Table;g=meta.k8s.io;v=v1beta1",
            Endpoint.CONVERTIBLE,
            Negotiated(YAML, convert=Conversion("Table", "meta.k8s.io", "v1beta1")),
        ),
        (
            "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
            Endpoint.CONVERTIBLE,
            Negotiated(JSON, convert=Conversion("PartialObjectMetadataList", "meta.k8s.io", "v1")),
        ),
    ],
)
def test_negotiate(header: str, endpoint: Endpoint, expected: Negotiated) -> None:
    assert negotiate(header, endpoint) == expected


@pytest.mark.parametrize(
    ("header", "endpoint"),
    [
        ("text/html", Endpoint.PLAIN),
        ("application/xml, text/plain", Endpoint.CONVERTIBLE),
        # A Table where no TableConvertor exists (custom and external metrics).
        ("application/json;as=Table;v=v1;g=meta.k8s.io", Endpoint.PLAIN),
        # Tables are JSON or YAML only; a conversion to another group is never allowed.
        ("application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io", Endpoint.CONVERTIBLE),
        ("application/json;as=Table;v=v1;g=example.com", Endpoint.CONVERTIBLE),
        ("application/json;as=Table", Endpoint.CONVERTIBLE),
        ("application/yaml;stream=watch", Endpoint.PLAIN),
        ("application/json;sv=v1", Endpoint.PLAIN),
        ("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1", Endpoint.PLAIN),
    ],
)
def test_negotiation_fails(header: str, endpoint: Endpoint) -> None:
    assert negotiate(header, endpoint) is None


def test_not_acceptable_message_is_gos() -> None:
    assert not_acceptable_message() == (
        "only the following media types are accepted: "
        "application/json, application/yaml, application/vnd.kubernetes.protobuf"
    )


@given(st.text(max_size=200), st.sampled_from(list(Endpoint)))
def test_any_header_negotiates_or_refuses(header: str, endpoint: Endpoint) -> None:
    chosen = negotiate(header, endpoint)
    assert chosen is None or chosen.media in (JSON, YAML, PROTOBUF)
    if chosen is not None and chosen.convert is not None:
        assert endpoint is not Endpoint.PLAIN
