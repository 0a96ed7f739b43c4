"""Responses in Kubernetes shapes, written as k8s.io/apiserver's responsewriters write them.

- `object_response` (SerializeObject / WriteObjectNegotiated): the negotiated media type; JSON
  is Go's `json.Encoder` output, compact with a final newline, or `json.MarshalIndent` without
  one when the client is a human (`?pretty=true`, curl, wget, browsers); YAML as
  sigs.k8s.io/yaml writes it.
- `status_response` (ErrorNegotiated): a Status the same way; when no representation the
  client accepts exists, the indented JSON of `raw_json_response` (WriteRawJSON).
Go's encoder escapes `<`, `>`, `&`, U+2028 and U+2029 inside strings; so do these.
"""

import time
from typing import Any

import orjson
from aiohttp import web

from adapter.errors import APIError, NotAcceptableError
from adapter.providers.custom import MetricValue
from adapter.providers.external import ExternalMetricValue
from adapter.server.negotiation import (
    JSON,
    YAML,
    Endpoint,
    Negotiated,
    negotiate,
    not_acceptable_message,
    route_accepts,
)
from adapter.server.yaml_encoding import encode_yaml

__all__ = [
    "CUSTOM_GROUP",
    "EXTERNAL_GROUP",
    "custom_metric_list",
    "external_metric_list",
    "go_json",
    "json_response",
    "negotiated",
    "object_response",
    "raw_json_response",
    "require_route_accept",
    "rfc3339",
    "status_response",
]

CUSTOM_GROUP = "custom.metrics.k8s.io"
EXTERNAL_GROUP = "external.metrics.k8s.io"

_HTML_ESCAPES = (
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    (b"&", b"\\u0026"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)
_PRETTY_AGENTS = ("curl", "Wget", "Mozilla/5.0")
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})


def rfc3339(timestamp: float) -> str:
    """metav1.Time as JSON: RFC 3339 in UTC, whole seconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def go_json(body: Any, *, indent: bool = False) -> bytes:
    """encoding/json's Marshal (or MarshalIndent with two spaces): no final newline."""
    data = orjson.dumps(body, option=orjson.OPT_INDENT_2 if indent else 0)
    for raw, escaped in _HTML_ESCAPES:
        if raw in data:
            data = data.replace(raw, escaped)
    return data


def _is_pretty(request: web.BaseRequest) -> bool:
    """negotiation.isPrettyPrint: `?pretty` (strconv.ParseBool) wins over the User-Agent."""
    flag = request.query.get("pretty", "")
    if flag:
        return flag in _TRUE
    return request.headers.get("User-Agent", "").startswith(_PRETTY_AGENTS)


def _response(
    body: bytes, status: int, content_type: str, headers: dict[str, str] | None
) -> web.Response:
    response = web.Response(body=body, status=status, headers=headers)
    # Set directly: aiohttp's content_type setter would drop media type parameters.
    response.headers["Content-Type"] = content_type
    # WithCacheControl: API responses are never cached by intermediaries.
    response.headers["Cache-Control"] = "no-cache, private"
    return response


def json_response(body: Any) -> web.Response:
    """`json.Marshal` output as it is: compact, no final newline (kube-openapi's documents)."""
    return _response(go_json(body), 200, "application/json", None)


def raw_json_response(
    body: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """responsewriters.WriteRawJSON: indented JSON, no final newline, whatever was asked."""
    return _response(go_json(body, indent=True), status, "application/json", headers)


def negotiated(request: web.BaseRequest, endpoint: Endpoint = Endpoint.PLAIN) -> Negotiated:
    """The representation the client asked for; a 406 when the server has none of them."""
    chosen = negotiate(request.headers.get("Accept", ""), endpoint)
    if chosen is None:
        raise NotAcceptableError(not_acceptable_message())
    return chosen


def require_route_accept(request: web.BaseRequest, produces: tuple[str, ...]) -> None:
    """go-restful's Accept check of a route, before its handler: its 406 (a ServiceError made a
    Status by apierrors.NewGenericServerResponse, hence the empty details)."""
    if not route_accepts(request.headers.get("Accept", ""), produces):
        raise NotAcceptableError(
            "406: Not Acceptable\n\nAvailable representations: " + ", ".join(produces),
            details={},
        )


def object_response(
    request: web.BaseRequest,
    body: Any,
    chosen: Negotiated | None = None,
    *,
    status: int = 200,
    content_type: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """responsewriters.SerializeObject in the negotiated representation (`chosen`, else
    negotiated here without conversions). Protobuf is answered in JSON."""
    if chosen is None:
        chosen = negotiated(request)
    if chosen.media is YAML:
        return _response(encode_yaml(body), status, content_type or YAML.name, headers)
    if chosen.pretty or _is_pretty(request):
        data = go_json(body, indent=True)
    else:
        data = go_json(body) + b"\n"
    return _response(data, status, content_type or JSON.name, headers)


def status_response(
    request: web.BaseRequest, error: APIError, *, headers: dict[str, str] | None = None
) -> web.Response:
    """responsewriters.ErrorNegotiated: the error's Status, in what the client accepts."""
    chosen = negotiate(request.headers.get("Accept", ""), Endpoint.PLAIN)
    if chosen is None:
        return raw_json_response(error.status(), status=error.code, headers=headers)
    return object_response(request, error.status(), chosen, status=error.code, headers=headers)


def _custom_item(value: MetricValue, version: str, timestamp: str) -> dict[str, Any]:
    item: dict[str, Any] = {"describedObject": value.described_object.as_json()}
    if version == "v1beta1":
        item["metricName"] = value.metric
        item["timestamp"] = timestamp
        item["value"] = value.value
        item["selector"] = value.selector
    else:
        item["metric"] = {"name": value.metric, "selector": value.selector}
        item["timestamp"] = timestamp
        item["value"] = value.value
    return item


def custom_metric_list(values: list[MetricValue], version: str) -> dict[str, Any]:
    # The values of one request share their timestamp: format it once, not per object.
    formatted: dict[float, str] = {}
    items = []
    for value in values:
        timestamp = formatted.get(value.timestamp)
        if timestamp is None:
            timestamp = formatted[value.timestamp] = rfc3339(value.timestamp)
        items.append(_custom_item(value, version, timestamp))
    return {
        "kind": "MetricValueList",
        "apiVersion": f"{CUSTOM_GROUP}/{version}",
        "metadata": {},
        "items": items,
    }


def external_metric_list(values: list[ExternalMetricValue]) -> dict[str, Any]:
    return {
        "kind": "ExternalMetricValueList",
        "apiVersion": f"{EXTERNAL_GROUP}/v1beta1",
        "metadata": {},
        "items": [
            {
                "metricName": v.metric,
                "metricLabels": v.labels,
                "timestamp": rfc3339(v.timestamp),
                "value": v.value,
            }
            for v in values
        ],
    }
