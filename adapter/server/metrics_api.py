"""Request handlers for custom.metrics.k8s.io and external.metrics.k8s.io.

Paths, as custom-metrics-apiserver routes them (after `/apis/<group>/<version>/`):
- custom, root-scoped objects:   `{resource}/{name}/{metric}`             (nodes/n1/m, nodes/*/m)
- custom, namespaced objects:    `namespaces/{ns}/{resource}/{name}/{metric}`
- custom, a namespace itself:    `namespaces/{ns}/metrics/{metric}`       ({ns} may be `*`)
- external:                      `namespaces/{ns}/{metric}`
`namespaces/{ns}/{x}` (but the namespace's `status`, `finalize`) is a 400 "invalid request path";
any other shape is a 404. Handlers parse the request into plain values and call the provider;
providers never see HTTP.
"""

from aiohttp import web
from aiohttp.typedefs import Handler

from adapter.apimachinery.labels import EVERYTHING, Selector, SelectorError, parse_selector
from adapter.errors import BadRequestError, path_not_found
from adapter.kube.rest_mapper import NAMESPACES, GroupResource
from adapter.naming.metrics_query import check_promql_selector
from adapter.providers.custom import CustomMetricsProvider
from adapter.providers.external import ExternalMetricsProvider
from adapter.server.negotiation import LIST_ROUTE_MEDIA_TYPES
from adapter.server.responses import (
    custom_metric_list,
    external_metric_list,
    negotiated,
    object_response,
    require_route_accept,
)

__all__ = [
    "CUSTOM_VERSIONS",
    "EXTERNAL_VERSIONS",
    "custom_handler",
    "external_handler",
    "parse_selector_param",
]

CUSTOM_VERSIONS = ("v1beta2", "v1beta1")
EXTERNAL_VERSIONS = ("v1beta1",)


def _selector(request: web.Request, param: str, *, promql: bool = False) -> Selector:
    return parse_selector_param(request.query.get(param, ""), param, promql=promql)


def parse_selector_param(text: str, param: str, *, promql: bool = False) -> Selector:
    """A selector query parameter; a bad one is a 400, as in the Go adapter.

    `promql`: it becomes PromQL label matchers (metricLabelSelector, the external
    labelSelector), so what they cannot express is a 400 too, before any query is sent."""
    if not text:
        return EVERYTHING
    try:
        selector = parse_selector(text)
        if promql:
            check_promql_selector(selector)
        return selector
    except SelectorError as exc:
        raise BadRequestError(f"invalid {param} {text!r}: {exc}") from None


def _object_name(request: web.Request, path_name: str) -> str:
    """The list handler's `metadata.name` field selector: it may name the object for a `*`
    path, and must agree with a named path."""
    field_selector = request.query.get("fieldSelector", "")
    for term in filter(None, field_selector.split(",")):
        key, _, value = term.partition("=")
        if key.strip() != "metadata.name":
            continue
        value = value.lstrip("=").strip()
        if path_name == "*":
            return value
        if value != path_name:
            raise BadRequestError("fieldSelector metadata.name doesn't match requested name")
    return path_name


def _custom_route_matches(segments: list[str]) -> bool:
    """Whether one of custom-metrics-apiserver's three routes matches (else go-restful's 404)."""
    if not all(segments):
        return False
    return (
        len(segments) == 3
        or (len(segments) == 4 and segments[0] == "namespaces" and segments[2] == "metrics")
        or (len(segments) == 5 and segments[0] == "namespaces")
    )


def _parse_custom_path(segments: list[str]) -> tuple[str, GroupResource, str, str]:
    """(namespace, resource, object name, metric) of a routed custom-metrics path."""
    if len(segments) == 3:
        resource, name, metric = segments
        # The root route also takes what RequestInfo reads as fewer parts: `namespaces/{ns}/x`
        # (the namespace's `status` and `finalize` subresources aside), `watch/…`, `proxy/…`.
        if resource in ("watch", "proxy") or (
            resource == "namespaces" and metric not in ("status", "finalize")
        ):
            raise BadRequestError("invalid request path")
        return "", GroupResource.parse(resource), name, metric
    if len(segments) == 4:
        # The metric of the namespace object itself: a root-scoped request on namespaces.
        return "", NAMESPACES, segments[1], segments[3]
    _, namespace, resource, name, metric = segments
    return namespace, GroupResource.parse(resource), name, metric


def custom_handler(provider: CustomMetricsProvider) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        version = request.match_info["version"]
        segments = request.match_info["tail"].split("/")
        if version not in CUSTOM_VERSIONS or not _custom_route_matches(segments):
            raise path_not_found()
        require_route_accept(request, LIST_ROUTE_MEDIA_TYPES)
        namespace, resource, name, metric = _parse_custom_path(segments)
        metric_selector = _selector(request, "metricLabelSelector", promql=True)
        name = _object_name(request, name)
        if name == "*":
            values = await provider.get_metric_by_selector(
                resource, namespace, _selector(request, "labelSelector"), metric, metric_selector
            )
        else:
            values = [
                await provider.get_metric_by_name(
                    resource, namespace, name, metric, metric_selector
                )
            ]
        # Negotiated after the provider answered, as custom-metrics-apiserver does: no
        # conversion (Table) is offered.
        body = custom_metric_list(values, version)
        return object_response(request, body, negotiated(request))

    return handle


def external_handler(provider: ExternalMetricsProvider) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        if request.match_info["version"] not in EXTERNAL_VERSIONS:
            raise path_not_found()
        segments = request.match_info["tail"].split("/")
        if len(segments) != 3 or segments[0] != "namespaces" or not all(segments):
            raise path_not_found()
        require_route_accept(request, LIST_ROUTE_MEDIA_TYPES)
        # Negotiated before the query, as k8s.io/apiserver's ListResource does.
        chosen = negotiated(request)
        _, namespace, metric = segments
        values = await provider.get_external_metric(
            namespace, metric, _selector(request, "labelSelector", promql=True)
        )
        return object_response(request, external_metric_list(values), chosen)

    return handle
