"""The API surface against a real Prometheus, read with the real `kubectl get --raw`.

The demo exporter serves pods web-0/1/2 at exactly 0.5, 1 and 2 requests per second and
queue gauges; the demo config turns them into custom and external metrics.
"""

import asyncio
from typing import Any

import pytest

from tests.integration.conftest import Stack

pytestmark = pytest.mark.asyncio(loop_scope="module")

CUSTOM = "/apis/custom.metrics.k8s.io"
EXTERNAL = "/apis/external.metrics.k8s.io/v1beta1"
RATES = {"web-0": "500m", "web-1": "1", "web-2": "2"}


def values(body: dict[str, Any]) -> dict[str, str]:
    return {item["describedObject"]["name"]: item["value"] for item in body["items"]}


@pytest.mark.parametrize("version", ["v1beta1", "v1beta2"])
async def test_discovery_lists_the_metrics(stack: Stack, version: str) -> None:
    body = await stack.get_json(f"{CUSTOM}/{version}")
    assert body["groupVersion"] == f"custom.metrics.k8s.io/{version}"
    assert {(r["name"], r["namespaced"]) for r in body["resources"]} == {
        ("pods/http_requests_per_second", True),
        ("services/http_requests_per_second", True),
        ("namespaces/http_requests_per_second", False),
        ("pods/memory_usage_bytes", True),
        ("namespaces/memory_usage_bytes", False),
        ("nodes/memory_available_bytes", False),
    }
    external = await stack.get_json(EXTERNAL)
    assert sorted(r["name"] for r in external["resources"]) == ["queue_consumer_lag", "queue_depth"]
    groups = await stack.get_json("/apis")
    assert [g["name"] for g in groups["groups"]] == [
        "custom.metrics.k8s.io",
        "external.metrics.k8s.io",
        "metrics.k8s.io",
    ]


@pytest.mark.parametrize("pod", sorted(RATES))
async def test_named_pod_metric_both_versions(stack: Stack, pod: str) -> None:
    v1 = await stack.get_json(
        f"{CUSTOM}/v1beta1/namespaces/demo/pods/{pod}/http_requests_per_second"
    )
    v2 = await stack.get_json(
        f"{CUSTOM}/v1beta2/namespaces/demo/pods/{pod}/http_requests_per_second"
    )
    assert v1["kind"] == v2["kind"] == "MetricValueList"
    assert (
        v1["items"][0]["metricName"]
        == v2["items"][0]["metric"]["name"]
        == "http_requests_per_second"
    )
    assert v1["items"][0]["describedObject"] == {
        "kind": "Pod",
        "namespace": "demo",
        "name": pod,
        "apiVersion": "/v1",
    }
    assert values(v1) == values(v2) == {pod: RATES[pod]}


async def test_all_pods_with_label_selector(stack: Stack) -> None:
    body = await stack.get_json(
        f"{CUSTOM}/v1beta2/namespaces/demo/pods/*/http_requests_per_second?labelSelector=service%3Dweb"
    )
    assert values(body) == RATES
    # No object matches: the Go adapter's "no resource names" answer.
    code, _, err = await stack.get_raw(
        f"{CUSTOM}/v1beta2/namespaces/demo/pods/*/http_requests_per_second?labelSelector=service%3Dother"
    )
    assert code == 1
    assert (
        "Error from server (NotFound): the server could not find the metric http_requests_per_second for pods"
        in err
    )


async def test_object_and_namespace_metrics(stack: Stack) -> None:
    service = await stack.get_json(
        f"{CUSTOM}/v1beta2/namespaces/demo/services/web/http_requests_per_second"
    )
    assert service["items"][0]["describedObject"]["kind"] == "Service"
    assert values(service) == {"web": "3500m"}
    namespace = await stack.get_json(
        f"{CUSTOM}/v1beta1/namespaces/demo/metrics/http_requests_per_second"
    )
    assert namespace["items"][0]["describedObject"] == {
        "kind": "Namespace",
        "name": "demo",
        "apiVersion": "/v1",
    }
    assert values(namespace) == {"demo": "3500m"}
    memory = await stack.get_json(f"{CUSTOM}/v1beta2/namespaces/demo/pods/web-1/memory_usage_bytes")
    assert values(memory) == {"web-1": "157286400"}


async def test_cluster_scoped_node_metrics(stack: Stack) -> None:
    node = await stack.get_json(f"{CUSTOM}/v1beta1/nodes/node-a/memory_available_bytes")
    assert node["items"][0]["describedObject"] == {
        "kind": "Node",
        "name": "node-a",
        "apiVersion": "/v1",
    }
    assert values(node) == {"node-a": "5368709120"}
    nodes = await stack.get_json(f"{CUSTOM}/v1beta2/nodes/*/memory_available_bytes")
    assert values(nodes) == {"node-a": "5368709120", "node-b": "3221225472"}
    code, _, err = await stack.get_raw(
        f"{CUSTOM}/v1beta2/namespaces/demo/nodes/node-a/memory_available_bytes"
    )
    assert code == 1 and "NotFound" in err


async def test_metric_label_selector_is_applied_and_echoed(stack: Stack) -> None:
    body = await stack.get_json(
        f"{CUSTOM}/v1beta1/namespaces/demo/pods/web-2/http_requests_per_second?metricLabelSelector=service%3Dweb"
    )
    assert body["items"][0]["selector"] == {"matchLabels": {"service": "web"}}
    assert values(body) == {"web-2": "2"}


async def test_external_metrics(stack: Stack) -> None:
    body = await stack.get_json(f"{EXTERNAL}/namespaces/default/queue_depth")
    assert body["kind"] == "ExternalMetricValueList"
    assert sorted((i["metricLabels"]["name"], i["value"]) for i in body["items"]) == [
        ("orders", "42"),
        ("payments", "7500m"),
    ]
    body = await stack.get_json(
        f"{EXTERNAL}/namespaces/anything/queue_consumer_lag?labelSelector=name%3Dorders"
    )
    assert [(i["metricLabels"], i["value"]) for i in body["items"]] == [
        ({"name": "orders"}, "1250")
    ]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        pytest.param(f"{CUSTOM}/v1beta2/namespaces/demo/pods/web-0/nope", "the server could not find the metric nope for pods", id="unknown-metric"),
        pytest.param(f"{CUSTOM}/v1beta1/namespaces/demo/pods/missing/http_requests_per_second", "the server could not find the metric http_requests_per_second for pods missing", id="no-data"),
        pytest.param(f"{EXTERNAL}/namespaces/default/nope", "the server could not find the metric nope for namespaces", id="unknown-external"),
    ],
)  # fmt: skip
async def test_not_found(stack: Stack, path: str, message: str) -> None:
    code, _, err = await stack.get_raw(path)
    assert code == 1
    assert f"Error from server (NotFound): {message}" in err


@pytest.mark.parametrize(
    "path",
    [
        f"{CUSTOM}/v1beta2/namespaces/demo/pods/*/http_requests_per_second?labelSelector=a%20in%20(b",
        f"{CUSTOM}/v1beta2/namespaces/demo/pods/web-0/http_requests_per_second?metricLabelSelector=%21%21",
        f"{EXTERNAL}/namespaces/default/queue_depth?labelSelector=%3D%3D",
    ],
)
async def test_bad_selector_is_bad_request(stack: Stack, path: str) -> None:
    code, _, err = await stack.get_raw(path)
    assert code == 1
    assert "Error from server (BadRequest)" in err


async def test_promql_is_what_the_go_adapter_sends(stack: Stack) -> None:
    """The query Prometheus received (its own query log) for each request shape."""
    requests_and_queries = [
        (f"{CUSTOM}/v1beta2/namespaces/demo/pods/web-0/http_requests_per_second",
         'sum(irate(http_requests_total{namespace="demo",pod="web-0"}[1m])) by (pod)'),
        (f"{CUSTOM}/v1beta1/namespaces/demo/pods/*/http_requests_per_second",
         'sum(irate(http_requests_total{namespace="demo",pod=~"web-0|web-1|web-2"}[1m])) by (pod)'),
        (f"{CUSTOM}/v1beta2/namespaces/demo/pods/web-1/http_requests_per_second?metricLabelSelector=service%3Dweb",
         'sum(irate(http_requests_total{service="web",namespace="demo",pod="web-1"}[1m])) by (pod)'),
        (f"{CUSTOM}/v1beta2/namespaces/demo/metrics/http_requests_per_second",
         'sum(irate(http_requests_total{namespace="demo"}[1m])) by (namespace)'),
        (f"{CUSTOM}/v1beta2/namespaces/demo/services/web/http_requests_per_second",
         'sum(irate(http_requests_total{namespace="demo",service="web"}[1m])) by (service)'),
        (f"{CUSTOM}/v1beta1/nodes/node-b/memory_available_bytes",
         'sum(node_memory_MemAvailable_bytes{node="node-b"}) by (node)'),
        (f"{EXTERNAL}/namespaces/default/queue_depth?labelSelector=name%20in%20(payments,orders)",
         'sum(queue_depth{name=~"orders|payments"}) by (name)'),
    ]  # fmt: skip
    for path, query in requests_and_queries:
        before = len(stack.prometheus.query_log())
        await stack.get_json(path)
        # Prometheus writes its query log asynchronously.
        for _ in range(100):
            logged = stack.prometheus.query_log()[before:]
            if logged:
                break
            await asyncio.sleep(0.02)
        assert logged == [query], path


async def test_health_version_and_own_metrics(stack: Stack) -> None:
    code, out, _ = await stack.get_raw("/readyz?verbose")
    assert code == 0 and "[+]metric-discovery ok" in out
    assert (await stack.get_json("/version"))["major"] == "1"
    code, out, _ = await stack.get_raw("/metrics")
    assert code == 0
    assert 'prometheus_adapter_relist_total{result="success"}' in out
    assert "prometheus_adapter_prometheus_client_request_duration_seconds_bucket" in out
