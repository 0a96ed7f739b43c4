"""JSON responses in Kubernetes shapes: lists of metric values, Status, timestamps."""

import time
from typing import Any

import orjson
from aiohttp import web

from adapter.providers.custom import MetricValue
from adapter.providers.external import ExternalMetricValue

__all__ = [
    "CUSTOM_GROUP",
    "EXTERNAL_GROUP",
    "custom_metric_list",
    "external_metric_list",
    "json_response",
    "rfc3339",
]

CUSTOM_GROUP = "custom.metrics.k8s.io"
EXTERNAL_GROUP = "external.metrics.k8s.io"


def rfc3339(timestamp: float) -> str:
    """metav1.Time as JSON: RFC 3339 in UTC, whole seconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def json_response(
    body: Any,
    *,
    status: int = 200,
    pretty: bool = False,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> web.Response:
    option = orjson.OPT_INDENT_2 if pretty else 0
    response = web.Response(body=orjson.dumps(body, option=option), status=status, headers=headers)
    # Set directly: aiohttp's content_type setter would drop the media type parameters that
    # aggregated discovery relies on.
    response.headers["Content-Type"] = content_type
    # As k8s.io/apiserver: API responses are never cached by intermediaries.
    response.headers["Cache-Control"] = "no-cache, private"
    return response


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
