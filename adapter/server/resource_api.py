"""Request handlers for metrics.k8s.io/v1beta1 (`kubectl top`, the HPA's resource metrics).

Paths and bodies are metrics-server's (`pkg/api`, served by k8s.io/apiserver):
- `nodes`, `nodes/{name}`                                      → NodeMetricsList / NodeMetrics
- `pods`, `namespaces/{ns}/pods`, `namespaces/{ns}/pods/{name}` → PodMetricsList / PodMetrics
Lists honour `labelSelector` and `fieldSelector` (`metadata.name`, `metadata.namespace`);
list items carry no kind/apiVersion; a single object that is unknown or has no metrics is a 404.
"""

import time
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from adapter.apimachinery.labels import EVERYTHING, Selector, SelectorError, parse_selector
from adapter.errors import BadRequestError
from adapter.golang.duration import format_go_duration
from adapter.providers.resource import (
    EVERY_FIELD,
    FieldSelector,
    NodeMetrics,
    PodMetrics,
    ResourceMetricsProvider,
    parse_field_selector,
)
from adapter.server.discovery import APIResource
from adapter.server.negotiation import (
    LIST_ROUTE_MEDIA_TYPES,
    ROUTE_MEDIA_TYPES,
    Endpoint,
    Negotiated,
)
from adapter.server.resource_table import convert_resource_metrics
from adapter.server.responses import (
    negotiated,
    object_response,
    require_route_accept,
    rfc3339,
)

__all__ = [
    "RESOURCE_GROUP",
    "RESOURCE_VERSIONS",
    "add_resource_metrics_routes",
    "node_metrics_json",
    "pod_metrics_json",
    "resource_metrics_group_resources",
]

RESOURCE_GROUP = "metrics.k8s.io"
RESOURCE_VERSIONS = ("v1beta1",)
_API_VERSION = f"{RESOURCE_GROUP}/v1beta1"
_VERBS = ("get", "list")


def resource_metrics_group_resources() -> list[APIResource]:
    """The APIResourceList entries metrics-server advertises for metrics.k8s.io/v1beta1."""
    return [
        APIResource("nodes", namespaced=False, kind="NodeMetrics", verbs=_VERBS),
        APIResource("pods", namespaced=True, kind="PodMetrics", verbs=_VERBS),
    ]


def _usage(cpu: str, memory: str) -> dict[str, str]:
    return {"cpu": cpu, "memory": memory}


def node_metrics_json(metrics: NodeMetrics, now: float, *, typed: bool) -> dict[str, Any]:
    """A NodeMetrics object; `typed` adds kind/apiVersion (single GET, not list items)."""
    body: dict[str, Any] = {"kind": "NodeMetrics", "apiVersion": _API_VERSION} if typed else {}
    body["metadata"] = {
        "name": metrics.name,
        "creationTimestamp": rfc3339(now),
        "labels": dict(metrics.labels),
    }
    body["timestamp"] = rfc3339(metrics.timestamp)
    body["window"] = format_go_duration(metrics.window)
    body["usage"] = _usage(metrics.cpu, metrics.memory)
    return body


def pod_metrics_json(metrics: PodMetrics, now: float, *, typed: bool) -> dict[str, Any]:
    """A PodMetrics object; `typed` adds kind/apiVersion (single GET, not list items)."""
    body: dict[str, Any] = {"kind": "PodMetrics", "apiVersion": _API_VERSION} if typed else {}
    body["metadata"] = {
        "name": metrics.name,
        "namespace": metrics.namespace,
        "creationTimestamp": rfc3339(now),
        "labels": dict(metrics.labels),
    }
    body["timestamp"] = rfc3339(metrics.timestamp)
    body["window"] = format_go_duration(metrics.window)
    body["containers"] = [
        {"name": c.name, "usage": _usage(c.cpu, c.memory)} for c in metrics.containers
    ]
    return body


def _metadata_labels(body: dict[str, Any]) -> None:
    # metav1.ObjectMeta's labels are `omitempty`.
    if not body["metadata"]["labels"]:
        del body["metadata"]["labels"]


def _list(kind: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": kind, "apiVersion": _API_VERSION, "metadata": {}, "items": items}


def _label_selector(request: web.Request) -> Selector:
    text = request.query.get("labelSelector", "")
    if not text:
        return EVERYTHING
    try:
        return parse_selector(text)
    except SelectorError as exc:
        raise BadRequestError(str(exc)) from None


def _field_selector(request: web.Request) -> FieldSelector:
    text = request.query.get("fieldSelector", "")
    return parse_field_selector(text) if text else EVERY_FIELD


def add_resource_metrics_routes(
    app: web.Application,
    provider: ResourceMetricsProvider,
    *,
    clock: Callable[[], float] = time.time,
    wrap: Callable[[Handler], Handler] = lambda handler: handler,
) -> None:
    """Serve metrics.k8s.io/v1beta1 nodes and pods from `provider` on `app`; `wrap` lets the
    app gate every handler (e.g. while a config reload has removed resourceRules)."""
    base = f"/apis/{RESOURCE_GROUP}/v1beta1"

    def node(metrics: NodeMetrics, typed: bool) -> dict[str, Any]:
        body = node_metrics_json(metrics, clock(), typed=typed)
        _metadata_labels(body)
        return body

    def pod(metrics: PodMetrics, typed: bool) -> dict[str, Any]:
        body = pod_metrics_json(metrics, clock(), typed=typed)
        _metadata_labels(body)
        return body

    def render(metrics: NodeMetrics | PodMetrics, typed: bool = True) -> dict[str, Any]:
        return node(metrics, typed) if isinstance(metrics, NodeMetrics) else pod(metrics, typed)

    def answer(
        request: web.Request,
        found: Sequence[NodeMetrics | PodMetrics],
        chosen: Negotiated,
        *,
        pods: bool,
        single: bool,
    ) -> web.Response:
        if chosen.convert is not None:
            body = convert_resource_metrics(
                found, chosen.convert, render, request.query, pods=pods, single=single
            )
        elif single:
            body = render(found[0])
        else:
            kind = "PodMetricsList" if pods else "NodeMetricsList"
            body = _list(kind, [render(m, typed=False) for m in found])
        return object_response(request, body, chosen)

    async def list_nodes(request: web.Request) -> web.Response:
        require_route_accept(request, LIST_ROUTE_MEDIA_TYPES)
        chosen = negotiated(request, Endpoint.CONVERTIBLE)
        label_selector, field_selector = _label_selector(request), _field_selector(request)
        found = await provider.node_metrics(None, label_selector, field_selector)
        return answer(request, found, chosen, pods=False, single=False)

    async def get_node(request: web.Request) -> web.Response:
        require_route_accept(request, ROUTE_MEDIA_TYPES)
        chosen = negotiated(request, Endpoint.CONVERTIBLE)
        found = await provider.get_node_metrics(request.match_info["name"])
        return answer(request, [found], chosen, pods=False, single=True)

    async def list_pods(request: web.Request) -> web.Response:
        require_route_accept(request, LIST_ROUTE_MEDIA_TYPES)
        chosen = negotiated(request, Endpoint.CONVERTIBLE)
        namespace = request.match_info.get("namespace", "")
        label_selector, field_selector = _label_selector(request), _field_selector(request)
        found = await provider.pod_metrics(namespace, None, label_selector, field_selector)
        return answer(request, found, chosen, pods=True, single=False)

    async def get_pod(request: web.Request) -> web.Response:
        require_route_accept(request, ROUTE_MEDIA_TYPES)
        chosen = negotiated(request, Endpoint.CONVERTIBLE)
        found = await provider.get_pod_metrics(
            request.match_info["namespace"], request.match_info["name"]
        )
        return answer(request, [found], chosen, pods=True, single=True)

    app.router.add_get(f"{base}/nodes", wrap(list_nodes))
    app.router.add_get(f"{base}/nodes/{{name}}", wrap(get_node))
    app.router.add_get(f"{base}/pods", wrap(list_pods))
    app.router.add_get(f"{base}/namespaces/{{namespace}}/pods", wrap(list_pods))
    app.router.add_get(f"{base}/namespaces/{{namespace}}/pods/{{name}}", wrap(get_pod))
