"""Serving configs the Go adapter starts with but cannot fully serve, over real HTTP.

A rule without `metricsQuery`: the metric is listed; a custom-metrics request is 404 (Go's
registry cannot build the query and answers "not found"), an external one is 500 "unable to
fetch metrics" (Go's external provider), each with the rule named in the message and nothing
sent to Prometheus. A `metricsQuery` with a mistake Go reports only when executing reaches it
(an unknown field): requests whose query does not reach it are served, the others are
answered as Go answers them. `resourceRules` with only cpu: metrics.k8s.io answers empty lists and
404s, as Go's resource provider skips every namespace and node whose queries cannot be built.
"""

import json
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from adapter.discovery.registry import SeriesShape, build_registry
from adapter.kube.rest_mapper import BUILTIN_RESOURCES, StaticRESTMapper
from adapter.naming.rules import CompiledConfig, load_rules
from adapter.prometheus.client import Sample
from adapter.providers.custom import CustomMetricsProvider
from adapter.providers.external import ExternalMetricsProvider
from adapter.providers.objects import PrometheusObjectLister
from adapter.providers.resource import ResourceMetricsProvider
from adapter.server.app import ServerState, build_app
from adapter.server.metrics import AdapterMetrics
from adapter.server.middleware import error_middleware
from adapter.server.resource_api import add_resource_metrics_routes
from tests.unit.test_resource_provider import NOW, FakeObjects, FakePrometheus, node, pod

Client = TestClient[Any, Any]

NO_METRICS_QUERY = """
    rules:
    - seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
      resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
    externalRules:
    - seriesQuery: 'queue_depth{namespace!=""}'
      resources: {overrides: {namespace: {resource: namespace}}}
      metricsQuery: ""
"""

MISTAKE_IN_A_BRANCH = """
    rules:
    - seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
      resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
      metricsQuery: >-
        <<if eq (index .LabelValuesByName "pod") "p1">>sum(<<.Series>>{<<.LabelMatchers>>})
        by (<<.GroupBy>>)<<else>><<.Serie>><<end>>
    externalRules:
    - seriesQuery: 'queue_depth{namespace!=""}'
      resources: {overrides: {namespace: {resource: namespace}}}
      metricsQuery: '<<.Serie>>'
"""

ONLY_CPU = """
    resourceRules:
      cpu:
        containerQuery: sum(c{<<.LabelMatchers>>}) by (<<.GroupBy>>)
        nodeQuery: sum(n{<<.LabelMatchers>>}) by (<<.GroupBy>>)
        resources: {template: "<<.Resource>>"}
        containerLabel: container
"""

NO_CONTAINER_LABEL = """
    resourceRules:
      cpu:
        containerQuery: sum(c{<<.LabelMatchers>>}) by (<<.GroupBy>>)
        nodeQuery: sum(n{<<.LabelMatchers>>}) by (<<.GroupBy>>)
        resources: {template: "<<.Resource>>"}
      memory:
        containerQuery: sum(m{<<.LabelMatchers>>}) by (<<.GroupBy>>)
        nodeQuery: sum(m{<<.LabelMatchers>>}) by (<<.GroupBy>>)
        resources: {template: "<<.Resource>>"}
"""


def compile_text(tmp_path: Path, text: str) -> CompiledConfig:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text))
    return load_rules(path)


async def get_json(client: Client, path: str) -> tuple[int, Any]:
    response = await client.get(path)
    return response.status, json.loads(await response.read())


@pytest.fixture
async def prometheus() -> FakePrometheus:
    return FakePrometheus()


@pytest.fixture
async def metrics_client(tmp_path: Path, prometheus: FakePrometheus) -> AsyncIterator[Client]:
    async with rules_client(compile_text(tmp_path, NO_METRICS_QUERY), prometheus) as client:
        yield client


@asynccontextmanager
async def rules_client(
    compiled: CompiledConfig, prometheus: FakePrometheus
) -> AsyncIterator[Client]:
    """The custom and external metrics APIs serving one custom and one external rule."""
    registry = build_registry(
        compiled.rules,
        compiled.external_rules,
        {
            compiled.rules[0].series_query: [
                SeriesShape("http_requests_total", frozenset({"namespace", "pod"}))
            ],
            compiled.external_rules[0].series_query: [
                SeriesShape("queue_depth", frozenset({"namespace"}))
            ],
        },
    )
    series = FakeSeries(
        [
            {"__name__": "http_requests_total", "namespace": "demo", "pod": "p1"},
            {"__name__": "http_requests_total", "namespace": "demo", "pod": "p2"},
        ]
    )
    state = ServerState(
        metrics=AdapterMetrics(),
        custom=CustomMetricsProvider(
            lambda: registry,
            prometheus,
            PrometheusObjectLister(series, 600),
            StaticRESTMapper(BUILTIN_RESOURCES),
            clock=lambda: NOW,
        ),
        external=ExternalMetricsProvider(lambda: registry, prometheus),
    )
    async with TestClient(TestServer(build_app(state))) as client:
        yield client


class FakeSeries:
    def __init__(self, found: list[dict[str, str]]) -> None:
        self.found = found

    async def series(
        self, matches: Any, start: float | None = None, end: float | None = None
    ) -> list[dict[str, str]]:
        return self.found


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if code == 500:
        body["details"] = {
            "causes": [{"message": message.removeprefix("Internal error occurred: ")}]
        }
    body["code"] = code
    return body


async def test_a_rule_without_metrics_query_is_listed(metrics_client: Client) -> None:
    code, custom = await get_json(metrics_client, "/apis/custom.metrics.k8s.io/v1beta1")
    assert code == 200
    assert {r["name"] for r in custom["resources"]} == {
        "pods/http_requests_total",
        "namespaces/http_requests_total",
    }
    code, external = await get_json(metrics_client, "/apis/external.metrics.k8s.io/v1beta1")
    assert code == 200
    assert [r["name"] for r in external["resources"]] == ["queue_depth"]


@pytest.mark.parametrize("name", ["p1", "*"])
async def test_custom_request_without_metrics_query_is_404(
    metrics_client: Client, prometheus: FakePrometheus, name: str
) -> None:
    path = f"/apis/custom.metrics.k8s.io/v1beta2/namespaces/demo/pods/{name}/http_requests_total"
    assert await get_json(metrics_client, path) == (
        404,
        status(
            404,
            "NotFound",
            "the server could not find the metric http_requests_total for pods: "
            "rules[0].metricsQuery is empty",
        ),
    )
    assert prometheus.queries == []


async def test_external_request_without_metrics_query_is_500(
    metrics_client: Client, prometheus: FakePrometheus
) -> None:
    path = "/apis/external.metrics.k8s.io/v1beta1/namespaces/demo/queue_depth"
    assert await get_json(metrics_client, path) == (
        500,
        status(
            500,
            "InternalError",
            "Internal error occurred: unable to fetch metrics: "
            "externalRules[0].metricsQuery is empty",
        ),
    )
    assert prometheus.queries == []


async def test_a_mistake_only_fails_the_requests_that_reach_it(
    tmp_path: Path, prometheus: FakePrometheus
) -> None:
    compiled = compile_text(tmp_path, MISTAKE_IN_A_BRANCH)
    assert [w.path for w in compiled.warnings] == [
        "rules[0].metricsQuery",
        "externalRules[0].metricsQuery",
    ]
    served = 'sum(http_requests_total{namespace="demo",pod="p1"}) by (pod)'
    prometheus.answers[served] = [Sample({"pod": "p1"}, 2.0, NOW)]
    base = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/demo/pods"
    async with rules_client(compiled, prometheus) as client:
        code, body = await get_json(client, f"{base}/p1/http_requests_total")
        assert (code, [item["value"] for item in body["items"]]) == (200, ["2"])
        # Go's registry answers "not found" when it cannot build the query.
        assert await get_json(client, f"{base}/p2/http_requests_total") == (
            404,
            status(
                404,
                "NotFound",
                "the server could not find the metric http_requests_total for pods",
            ),
        )
        path = "/apis/external.metrics.k8s.io/v1beta1/namespaces/demo/queue_depth"
        assert await get_json(client, path) == (
            500,
            status(500, "InternalError", "Internal error occurred: unable to fetch metrics"),
        )
    assert [query for query, _ in prometheus.queries] == [served]


@asynccontextmanager
async def resource_client(
    compiled: CompiledConfig, prometheus: FakePrometheus
) -> AsyncIterator[Client]:
    assert compiled.resource_rules is not None
    objects = FakeObjects([pod("ns", "p1")], [node("n1")])
    provider = ResourceMetricsProvider(
        compiled.resource_rules, prometheus, objects, clock=lambda: NOW
    )
    app = web.Application(middlewares=[error_middleware(AdapterMetrics())])
    add_resource_metrics_routes(app, provider, clock=lambda: NOW)
    async with TestClient(TestServer(app)) as client:
        yield client


BASE = "/apis/metrics.k8s.io/v1beta1"


async def test_resource_rules_with_only_cpu_answer_empty_lists_and_404s(tmp_path: Path) -> None:
    prometheus = FakePrometheus(
        {
            'sum(c{namespace="ns",pod="p1"}) by (pod,container)': [
                Sample({"pod": "p1", "container": "c"}, 1.0, NOW)
            ],
            'sum(n{node="n1"}) by (node)': [Sample({"node": "n1"}, 1.0, NOW)],
        }
    )
    async with resource_client(compile_text(tmp_path, ONLY_CPU), prometheus) as client:
        for path, kind in (
            (f"{BASE}/pods", "PodMetricsList"),
            (f"{BASE}/nodes", "NodeMetricsList"),
        ):
            code, body = await get_json(client, path)
            assert (code, body["kind"], body["items"]) == (200, kind, [])
        code, body = await get_json(client, f"{BASE}/namespaces/ns/pods/p1")
        assert (code, body["message"]) == (404, 'podmetrics.metrics.k8s.io "ns/p1" not found')
        code, body = await get_json(client, f"{BASE}/nodes/n1")
        assert (code, body["message"]) == (404, 'nodemetrics.metrics.k8s.io "n1" not found')
    # The cpu queries ran (memory's cannot be built), as Go's provider runs both at once.
    assert {query for query, _ in prometheus.queries} == {
        'sum(c{namespace="ns",pod="p1"}) by (pod,container)',
        'sum(n{node="n1"}) by (node)',
    }


async def test_no_container_label_reports_one_container_named_empty(tmp_path: Path) -> None:
    prometheus = FakePrometheus(
        {
            'sum(c{namespace="ns",pod="p1"}) by (pod,)': [Sample({"pod": "p1"}, 0.5, NOW)],
            'sum(m{namespace="ns",pod="p1"}) by (pod,)': [Sample({"pod": "p1"}, 2048.0, NOW)],
        }
    )
    async with resource_client(compile_text(tmp_path, NO_CONTAINER_LABEL), prometheus) as client:
        code, body = await get_json(client, f"{BASE}/namespaces/ns/pods/p1")
    assert code == 200
    assert body["containers"] == [{"name": "", "usage": {"cpu": "500m", "memory": "2Ki"}}]
