"""The aiohttp application: routes for the metrics APIs, discovery, health, OpenAPI, version
and the adapter's own metrics, behind the request filters."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from adapter.errors import path_not_found
from adapter.providers.custom import CustomMetricsProvider
from adapter.providers.external import ExternalMetricsProvider
from adapter.providers.resource import ResourceMetricsProvider
from adapter.server.discovery import (
    APIResource,
    ServedGroup,
    aggregated_content_type,
    aggregated_discovery,
    api_group,
    api_group_list,
    api_resource_list,
    negotiate_aggregated,
)
from adapter.server.health import HealthCheck, add_health_routes
from adapter.server.metrics import AdapterMetrics
from adapter.server.metrics_api import (
    CUSTOM_VERSIONS,
    EXTERNAL_VERSIONS,
    custom_handler,
    external_handler,
)
from adapter.server.middleware import UNROUTED_KEY, error_middleware, refuse_upgrades
from adapter.server.negotiation import JSON, ROUTE_MEDIA_TYPES, Negotiated
from adapter.server.openapi import (
    GroupVersionSpec,
    openapi_v2,
    openapi_v3_document,
    openapi_v3_index,
)
from adapter.server.resource_api import (
    RESOURCE_GROUP,
    RESOURCE_VERSIONS,
    add_resource_metrics_routes,
    resource_metrics_group_resources,
)
from adapter.server.responses import (
    CUSTOM_GROUP,
    EXTERNAL_GROUP,
    json_response,
    object_response,
    raw_json_response,
    require_route_accept,
    status_response,
)
from adapter.version import version_info

__all__ = ["ServerState", "build_app"]


@dataclass
class ServerState:
    """What the HTTP layer serves from. `discovery_ready` says whether metric discovery has
    produced data; `shutting_down` turns readiness off before the listener closes."""

    metrics: AdapterMetrics
    custom: CustomMetricsProvider | None = None
    external: ExternalMetricsProvider | None = None
    resource: ResourceMetricsProvider | None = None
    # The API groups the current config serves (a reload may change them); None: every group
    # that has a provider.
    served_groups: Callable[[], frozenset[str]] | None = None
    discovery_ready: Callable[[], bool] = lambda: True
    shutting_down: bool = False
    # Filters that run after the built-in ones (authentication, authorization).
    extra_middlewares: Sequence[Middleware] = field(default_factory=tuple)


def _served_groups(state: ServerState) -> list[ServedGroup]:
    groups = []
    custom, external = state.custom, state.external
    if custom is not None:
        groups.append(
            ServedGroup(
                CUSTOM_GROUP,
                CUSTOM_VERSIONS,
                lambda: [
                    APIResource(f"{i.group_resource}/{i.metric}", i.namespaced, "MetricValueList")
                    for i in custom.list_all_metrics()
                ],
                APIResource("custommetrics", False, "MetricValueList"),
            )
        )
    if external is not None:
        groups.append(
            ServedGroup(
                EXTERNAL_GROUP,
                EXTERNAL_VERSIONS,
                lambda: [
                    APIResource(name, True, "ExternalMetricValueList")
                    for name in external.list_all_metrics()
                ],
                APIResource("externalmetrics", True, "ExternalMetricValueList"),
            )
        )
    if state.resource is not None:
        groups.append(
            ServedGroup(
                RESOURCE_GROUP,
                RESOURCE_VERSIONS,
                resource_metrics_group_resources,
                APIResource("pods", True, "PodMetrics", ("get", "list")),
            )
        )
    return groups


def _current(state: ServerState, groups: Sequence[ServedGroup]) -> list[ServedGroup]:
    if state.served_groups is None:
        return list(groups)
    served = state.served_groups()
    return [g for g in groups if g.name in served]


def _add_discovery_routes(
    app: web.Application, state: ServerState, all_groups: Sequence[ServedGroup]
) -> None:
    async def apis(request: web.Request) -> web.Response:
        require_route_accept(request, ROUTE_MEDIA_TYPES)
        groups = _current(state, all_groups)
        version = negotiate_aggregated(request.headers.get("Accept", ""))
        if version is not None:
            return object_response(
                request,
                aggregated_discovery(groups, version),
                Negotiated(JSON),
                content_type=aggregated_content_type(version),
                headers={"Vary": "Accept"},
            )
        return object_response(request, api_group_list(groups), headers={"Vary": "Accept"})

    def lookup(name: str) -> ServedGroup | None:
        return next((g for g in _current(state, all_groups) if g.name == name), None)

    async def group(request: web.Request) -> web.Response:
        served = lookup(request.match_info["group"])
        if served is None:
            raise web.HTTPNotFound()
        require_route_accept(request, ROUTE_MEDIA_TYPES)
        return object_response(request, api_group(served))

    async def group_version(request: web.Request) -> web.Response:
        served = lookup(request.match_info["group"])
        version = request.match_info["version"]
        if served is None or version not in served.versions:
            raise web.HTTPNotFound()
        require_route_accept(request, ROUTE_MEDIA_TYPES)
        return object_response(request, api_resource_list(served, version))

    app.router.add_get("/apis", apis)
    app.router.add_get("/apis/", apis)
    app.router.add_get("/apis/{group}", group)
    app.router.add_get("/apis/{group}/{version}", group_version)


def _add_openapi_routes(
    app: web.Application, state: ServerState, all_groups: Sequence[ServedGroup]
) -> None:
    def specs() -> list[GroupVersionSpec]:
        return [
            GroupVersionSpec(g.name, v) for g in _current(state, all_groups) for v in g.versions
        ]

    async def get_v2(request: web.Request) -> web.Response:
        return json_response(openapi_v2(specs()))

    async def get_v3_index(request: web.Request) -> web.Response:
        return json_response(openapi_v3_index(specs()))

    async def get_v3_document(request: web.Request) -> web.Response:
        key = (request.match_info["group"], request.match_info["version"])
        for spec in specs():
            if (spec.group, spec.version) == key:
                return json_response(openapi_v3_document(spec))
        raise path_not_found()

    app.router.add_get("/openapi/v2", get_v2)
    app.router.add_get("/openapi/v3", get_v3_index)
    app.router.add_get("/openapi/v3/apis/{group}/{version}", get_v3_document)


def _when_served(state: ServerState, group: str, handler: Handler) -> Handler:
    """A group's routes are not there while the current config does not serve the group."""
    if state.served_groups is None:
        return handler
    served_groups = state.served_groups

    async def handle(request: web.Request) -> web.StreamResponse:
        if group not in served_groups():
            raise web.HTTPNotFound()
        return await handler(request)

    return handle


def build_app(state: ServerState) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware(state.metrics), refuse_upgrades, *state.extra_middlewares]
    )
    groups = _served_groups(state)
    _add_discovery_routes(app, state, groups)
    if state.custom is not None:
        app.router.add_get(
            f"/apis/{CUSTOM_GROUP}/{{version}}/{{tail:.+}}",
            _when_served(state, CUSTOM_GROUP, custom_handler(state.custom)),
        )
    if state.external is not None:
        app.router.add_get(
            f"/apis/{EXTERNAL_GROUP}/{{version}}/{{tail:.+}}",
            _when_served(state, EXTERNAL_GROUP, external_handler(state.external)),
        )
    if state.resource is not None:
        add_resource_metrics_routes(
            app, state.resource, wrap=lambda h: _when_served(state, RESOURCE_GROUP, h)
        )
    _add_openapi_routes(app, state, groups)

    def discovery_check() -> str | None:
        return None if state.discovery_ready() else "metric discovery has not succeeded yet"

    def shutdown_check() -> str | None:
        return "the server is shutting down" if state.shutting_down else None

    basic = [HealthCheck("ping", lambda: None), HealthCheck("log", lambda: None)]
    add_health_routes(
        app,
        healthz=basic,
        livez=basic,
        readyz=[
            *basic,
            HealthCheck("metric-discovery", discovery_check),
            HealthCheck("shutdown", shutdown_check),
        ],
    )
    version = version_info()

    async def get_version(request: web.Request) -> web.Response:
        # routes.Version: a go-restful route producing JSON, written with WriteRawJSON.
        require_route_accept(request, (JSON.name,))
        return raw_json_response(version)

    async def get_metrics(request: web.Request) -> web.Response:
        return web.Response(
            body=state.metrics.exposition(), content_type="text/plain", charset="utf-8"
        )

    app.router.add_get("/version", get_version)
    app.router.add_get("/metrics", get_metrics)
    _add_index(app, state, groups)
    return app


def _add_index(app: web.Application, state: ServerState, all_groups: Sequence[ServedGroup]) -> None:
    """`/` lists the paths the server serves (routes.Index), and so does the 404 of a path
    nothing serves (IndexLister, the NotFoundHandler of the non-go-restful mux). A path under a
    go-restful WebService's root (a served API group, `/version`) is go-restful's 404 Status.
    """
    # WebService roots are listed, not their routes: `/apis` and the groups (below), not
    # metrics.k8s.io's `/nodes`.
    static = {
        info["path"]
        for resource in app.router.resources()
        if "path" in (info := resource.get_info()) and not info["path"].startswith("/apis/")
    } - {"/"}

    def listed_paths() -> list[str]:
        groups = _current(state, all_groups)
        dynamic = [f"/apis/{g.name}" for g in groups]
        dynamic += [f"/apis/{g.name}/{v}" for g in groups for v in g.versions]
        return sorted([*static, *dynamic])

    def restful_roots() -> list[str]:
        return ["/version", *(f"/apis/{g.name}" for g in _current(state, all_groups))]

    def unrouted(request: web.Request) -> web.Response:
        path = request.path
        if any(path == root or path.startswith(root + "/") for root in restful_roots()):
            return status_response(request, path_not_found())
        return raw_json_response({"paths": listed_paths()}, status=404)

    async def index(request: web.Request) -> web.Response:
        return raw_json_response({"paths": listed_paths()})

    app.router.add_get("/", index)
    app[UNROUTED_KEY] = unrouted
