"""The HTTP layer over real HTTP (aiohttp test server), with an in-memory Prometheus querier.

The integration tests run the same paths against a real Prometheus; these pin the shapes:
paths, status codes and messages, JSON bodies, discovery documents and health output.
"""

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from adapter.prometheus.client import PrometheusError, QueryResult, Sample
from adapter.server.app import ServerState
from adapter.server.discovery import APIResource, ServedGroup, api_resource_list

CONFIG = Path(__file__).resolve().parents[2] / "config" / "sample-config.yaml"
NOW = 1_700_000_000.0


class FakePrometheus:
    """Answers instant queries from a table and series calls from a list; records queries."""

    def __init__(self) -> None:
        self.queries: list[str] = []
        self.samples: list[Sample] = []
        self.result_type = "vector"
        self.series_list: list[dict[str, str]] = []
        self.fail = False

    async def query(self, query: str, time: float | None = None) -> QueryResult:
        self.queries.append(query)
        if self.fail:
            raise PrometheusError("connection refused", error_type="connection")
        return QueryResult(self.result_type, tuple(self.samples))

    async def series(
        self, matches: Any, start: float | None = None, end: float | None = None
    ) -> list[dict[str, str]]:
        if self.fail:
            raise PrometheusError("connection refused", error_type="connection")
        return self.series_list


def pod_sample(pod: str, value: float, namespace: str = "demo") -> Sample:
    return Sample({"namespace": namespace, "pod": pod}, value, NOW)


Client = TestClient[Any, Any]


async def get_json(client: Client, path: str, **kwargs: Any) -> tuple[int, Any]:
    response = await client.get(path, **kwargs)
    return response.status, json.loads(await response.read())


CUSTOM = "/apis/custom.metrics.k8s.io"
EXTERNAL = "/apis/external.metrics.k8s.io/v1beta1"


async def test_named_pod_metric_v1beta2(client: Client, fake: FakePrometheus) -> None:
    fake.samples = [pod_sample("web-0", 0.0166)]
    status, body = await get_json(
        client, f"{CUSTOM}/v1beta2/namespaces/demo/pods/web-0/http_requests"
    )
    assert status == 200
    assert body == {
        "kind": "MetricValueList",
        "apiVersion": "custom.metrics.k8s.io/v1beta2",
        "metadata": {},
        "items": [
            {
                "describedObject": {
                    "kind": "Pod",
                    "namespace": "demo",
                    "name": "web-0",
                    "apiVersion": "/v1",
                },
                "metric": {"name": "http_requests", "selector": None},
                "timestamp": "2023-11-14T22:13:20Z",
                "value": "16m",
            }
        ],
    }
    assert fake.queries == [
        'sum(rate(http_requests_total{namespace="demo",pod="web-0",container!="POD"}[2m])) by (pod)'
    ]


async def test_named_pod_metric_v1beta1_with_metric_selector(
    client: Client, fake: FakePrometheus
) -> None:
    fake.samples = [pod_sample("web-0", 2.5)]
    status, body = await get_json(
        client,
        f"{CUSTOM}/v1beta1/namespaces/demo/pods/web-0/http_requests",
        params={"metricLabelSelector": "job in (b,a)"},
    )
    assert status == 200
    assert body["apiVersion"] == "custom.metrics.k8s.io/v1beta1"
    item = body["items"][0]
    assert list(item) == ["describedObject", "metricName", "timestamp", "value", "selector"]
    assert item["value"] == "2500m"
    assert item["selector"] == {
        "matchExpressions": [{"key": "job", "operator": "In", "values": ["a", "b"]}]
    }
    assert fake.queries[-1].startswith(
        'sum(rate(http_requests_total{job=~"a|b",namespace="demo",pod="web-0"'
    )


async def test_not_equals_metric_selector_is_echoed_as_not_in(
    client: Client, fake: FakePrometheus
) -> None:
    # Go queries `job!="b"` and then fails (500): a LabelSelector cannot hold `!=`.
    fake.samples = [pod_sample("web-0", 1)]
    status, body = await get_json(
        client,
        f"{CUSTOM}/v1beta2/namespaces/demo/pods/web-0/http_requests",
        params={"metricLabelSelector": "job!=b"},
    )
    assert status == 200
    assert body["items"][0]["metric"]["selector"] == {
        "matchExpressions": [{"key": "job", "operator": "NotIn", "values": ["b"]}]
    }
    assert 'job!="b",namespace="demo",pod="web-0"' in fake.queries[-1]


@pytest.mark.parametrize(
    ("path", "param", "selector"),
    [
        pytest.param(f"{CUSTOM}/v1beta2/namespaces/demo/pods/web-0/http_requests", "metricLabelSelector", "a.b/c=d", id="custom-name"),
        pytest.param(f"{CUSTOM}/v1beta1/namespaces/demo/pods/*/http_requests", "metricLabelSelector", "k<3", id="custom-wildcard-lt"),
        pytest.param(f"{EXTERNAL}/namespaces/default/queue_depth", "labelSelector", "0", id="external-name"),
        pytest.param(f"{EXTERNAL}/namespaces/default/queue_depth", "labelSelector", "ok,k>3", id="external-gt"),
    ],
)  # fmt: skip
async def test_unexpressible_selector_is_refused_before_any_query(
    client: Client, fake: FakePrometheus, path: str, param: str, selector: str
) -> None:
    status, body = await get_json(client, path, params={param: selector})
    assert (status, body["reason"]) == (400, "BadRequest")
    assert body["message"].startswith(f"invalid {param} {selector!r}: ")
    assert fake.queries == []


async def test_object_label_selector_keeps_kubernetes_keys(
    client: Client, fake: FakePrometheus
) -> None:
    # labelSelector on custom metrics selects objects, never PromQL: any Kubernetes key goes.
    fake.series_list = [
        {"__name__": "http_requests_total", "namespace": "demo", "pod": "web-0", "a.b/c": "d"}
    ]
    fake.samples = [pod_sample("web-0", 1)]
    status, body = await get_json(
        client,
        f"{CUSTOM}/v1beta2/namespaces/demo/pods/*/http_requests",
        params={"labelSelector": "a.b/c=d"},
    )
    assert status == 200
    assert [i["describedObject"]["name"] for i in body["items"]] == ["web-0"]


async def test_wildcard_lists_objects_from_series(client: Client, fake: FakePrometheus) -> None:
    fake.series_list = [
        {"__name__": "http_requests_total", "namespace": "demo", "pod": p, "job": j}
        for p, j in (("web-1", "x"), ("web-0", "x"), ("other", "y"))
    ]
    fake.samples = [pod_sample("web-0", 1), pod_sample("web-1", 2)]
    status, body = await get_json(
        client,
        f"{CUSTOM}/v1beta2/namespaces/demo/pods/*/http_requests",
        params={"labelSelector": "job=x"},
    )
    assert status == 200
    assert [(i["describedObject"]["name"], i["value"]) for i in body["items"]] == [
        ("web-0", "1"),
        ("web-1", "2"),
    ]
    assert 'pod=~"web-0|web-1"' in fake.queries[-1]


async def test_namespace_metric_path(client: Client, fake: FakePrometheus) -> None:
    fake.samples = [Sample({"namespace": "demo"}, 3, NOW)]
    status, body = await get_json(client, f"{CUSTOM}/v1beta2/namespaces/demo/metrics/http_requests")
    assert status == 200
    assert body["items"][0]["describedObject"] == {
        "kind": "Namespace",
        "name": "demo",
        "apiVersion": "/v1",
    }
    assert (
        fake.queries[-1]
        == 'sum(rate(http_requests_total{namespace="demo",container!="POD"}[2m])) by (namespace)'
    )


async def test_cluster_scoped_node_metric(client: Client, fake: FakePrometheus) -> None:
    fake.samples = [Sample({"node": "n1"}, 1, NOW)]
    status, body = await get_json(client, f"{CUSTOM}/v1beta2/nodes/n1/node_requests")
    assert status == 200
    assert body["items"][0]["describedObject"] == {
        "kind": "Node",
        "name": "n1",
        "apiVersion": "/v1",
    }
    # Namespaced path for a cluster-scoped resource: not registered that way.
    status, body = await get_json(
        client, f"{CUSTOM}/v1beta2/namespaces/demo/nodes/n1/node_requests"
    )
    assert (status, body["message"]) == (
        404,
        "the server could not find the metric node_requests for nodes",
    )


@pytest.mark.parametrize(
    ("path", "params", "code", "reason", "message"),
    [
        pytest.param(f"{CUSTOM}/v1beta2/namespaces/demo/pods/web-0/nope", {}, 404, "NotFound", "the server could not find the metric nope for pods", id="unknown-metric"),
        pytest.param(f"{CUSTOM}/v1beta2/namespaces/demo/pods/web-9/http_requests", {}, 404, "NotFound", "the server could not find the metric http_requests for pods web-9", id="no-data-for-object"),
        pytest.param(f"{CUSTOM}/v1beta2/namespaces/demo/pods/*/http_requests", {"labelSelector": "a in (b"}, 400, "BadRequest", "invalid labelSelector", id="bad-label-selector"),
        pytest.param(f"{CUSTOM}/v1beta2/namespaces/demo/pods/web-0/http_requests", {"metricLabelSelector": "!!"}, 400, "BadRequest", "invalid metricLabelSelector", id="bad-metric-selector"),
        pytest.param(f"{CUSTOM}/v1beta2/namespaces/demo/pods/web-0/http_requests", {"fieldSelector": "metadata.name=web-1"}, 400, "BadRequest", "fieldSelector metadata.name doesn't match requested name", id="field-selector-mismatch"),
        pytest.param(f"{CUSTOM}/v1beta2/nodes/foo", {}, 404, "NotFound", "the server could not find the requested resource", id="no-metric-segment"),
        pytest.param(f"{CUSTOM}/v1beta2/namespaces/ns/pods/bar", {}, 404, "NotFound", "the server could not find the requested resource", id="namespaced-no-metric"),
        pytest.param(f"{CUSTOM}/v1beta3/namespaces/demo/pods/web-0/http_requests", {}, 404, "NotFound", "the server could not find the requested resource", id="unknown-version"),
        pytest.param(f"{CUSTOM}/v1beta2/blah", {}, 404, "NotFound", "the server could not find the requested resource", id="blah"),
        pytest.param(f"{EXTERNAL}/nonexistent-metric", {}, 404, "NotFound", "the server could not find the requested resource", id="external-no-namespace"),
        pytest.param(f"{EXTERNAL}/namespaces/foo", {}, 404, "NotFound", "the server could not find the requested resource", id="external-namespace-only"),
        pytest.param(f"{EXTERNAL}/namespaces/foo/group/metric", {}, 404, "NotFound", "the server could not find the requested resource", id="external-slash-in-name"),
        pytest.param(f"{EXTERNAL}/namespaces/default/nope", {}, 404, "NotFound", "the server could not find the metric nope for namespaces", id="external-unknown"),
        # Go: 500 "unable to fetch metrics"; PromQL has no ordering matcher, so a 400 here.
        pytest.param(f"{EXTERNAL}/namespaces/default/queue_depth", {"labelSelector": "x>1"}, 400, "BadRequest", "invalid labelSelector 'x>1': operator \">\" in \"x>1\" is not supported by prometheus label matchers", id="external-unsupported-operator"),
        pytest.param(f"{EXTERNAL}/namespaces/default/queue_depth", {"labelSelector": "x<1"}, 400, "BadRequest", "invalid labelSelector 'x<1': operator \"<\"", id="external-less-than"),
        # Go sends these names to Prometheus, which refuses the query: 500.
        pytest.param(f"{EXTERNAL}/namespaces/default/queue_depth", {"labelSelector": "a.b/c=d"}, 400, "BadRequest", "invalid labelSelector 'a.b/c=d': label name \"a.b/c\" is not valid in PromQL", id="external-non-promql-label-name"),
        pytest.param(f"{CUSTOM}/v1beta2/namespaces/demo/pods/web-0/http_requests", {"metricLabelSelector": "0"}, 400, "BadRequest", "invalid metricLabelSelector '0': label name \"0\" is not valid in PromQL", id="custom-non-promql-label-name"),
        # Go: 404 (its registry cannot build the query).
        pytest.param(f"{CUSTOM}/v1beta2/namespaces/demo/pods/*/http_requests", {"metricLabelSelector": "x>1"}, 400, "BadRequest", "invalid metricLabelSelector 'x>1': operator \">\"", id="custom-unsupported-operator"),
    ],
)  # fmt: skip
async def test_errors_are_status_objects(
    client: Client, path: str, params: dict[str, str], code: int, reason: str, message: str
) -> None:
    status, body = await get_json(client, path, params=params)
    assert status == code
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure"
    assert (body["code"], body.get("reason")) == (code, reason)
    assert body["message"].startswith(message)


async def test_prometheus_failure_is_internal_error(client: Client, fake: FakePrometheus) -> None:
    fake.fail = True
    status, body = await get_json(
        client, f"{CUSTOM}/v1beta2/namespaces/demo/pods/web-0/http_requests"
    )
    assert status == 500
    assert body["details"] == {"causes": [{"message": "unable to fetch metrics"}]}
    status, body = await get_json(client, f"{CUSTOM}/v1beta2/namespaces/demo/pods/*/http_requests")
    assert (status, body["message"]) == (
        500,
        "Internal error occurred: unable to list matching resources",
    )


async def test_external_metric(client: Client, fake: FakePrometheus) -> None:
    fake.samples = [Sample({"name": "q1"}, 50, NOW), Sample({"name": "q2"}, float("nan"), NOW)]
    status, body = await get_json(
        client,
        f"{EXTERNAL}/namespaces/default/queue_depth",
        params={"labelSelector": "topic=orders"},
    )
    assert status == 200
    assert body == {
        "kind": "ExternalMetricValueList",
        "apiVersion": "external.metrics.k8s.io/v1beta1",
        "metadata": {},
        "items": [
            {
                "metricName": "queue_depth",
                "metricLabels": {"name": "q1"},
                "timestamp": "2023-11-14T22:13:20Z",
                "value": "50",
            },
            {
                "metricName": "queue_depth",
                "metricLabels": {"name": "q2"},
                "timestamp": "2023-11-14T22:13:20Z",
                "value": "0",
            },
        ],
    }
    assert fake.queries[-1] == 'sum(queue_depth{topic="orders"}) by (name)'
    fake.result_type = "scalar"
    fake.samples = [Sample({}, 7, NOW)]
    _, body = await get_json(client, f"{EXTERNAL}/namespaces/default/QUEUE_DEPTH")
    assert body["items"] == [
        {
            "metricName": "QUEUE_DEPTH",
            "metricLabels": None,
            "timestamp": "2023-11-14T22:13:20Z",
            "value": "7",
        }
    ]
    fake.result_type = "matrix"
    status, body = await get_json(client, f"{EXTERNAL}/namespaces/default/queue_depth")
    assert (status, body["message"], "reason" in body) == (
        500,
        "encountered an unexpected query result type",
        False,
    )


async def test_discovery_documents(client: Client) -> None:
    status, body = await get_json(client, "/apis")
    assert status == 200
    assert [g["name"] for g in body["groups"]] == [
        "custom.metrics.k8s.io",
        "external.metrics.k8s.io",
    ]
    assert body["groups"][0]["preferredVersion"]["version"] == "v1beta2"
    status, body = await get_json(client, f"{CUSTOM}/v1beta1")
    assert (
        body["kind"] == "APIResourceList"
        and body["groupVersion"] == "custom.metrics.k8s.io/v1beta1"
    )
    names = {(r["name"], r["namespaced"]) for r in body["resources"]}
    assert ("pods/http_requests", True) in names
    assert ("namespaces/http_requests", False) in names
    assert ("jobs.batch/http_requests", True) in names  # the <<.Resource>> template surprise
    assert ("nodes/node_requests", False) in names
    status, body = await get_json(client, EXTERNAL)
    assert body["resources"] == [
        {
            "name": "queue_depth",
            "singularName": "",
            "namespaced": True,
            "kind": "ExternalMetricValueList",
            "verbs": ["get"],
        }
    ]
    status, body = await get_json(client, "/apis/custom.metrics.k8s.io")
    assert body["kind"] == "APIGroup" and [v["version"] for v in body["versions"]] == [
        "v1beta2",
        "v1beta1",
    ]
    status, _ = await get_json(client, "/apis/metrics.k8s.io/v1beta1")
    assert status == 404


@pytest.mark.parametrize("version", ["v2", "v2beta1"])
async def test_aggregated_discovery(client: Client, version: str) -> None:
    accept = f"application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList,application/json"
    response = await client.get("/apis", headers={"Accept": accept})
    assert (
        response.headers["Content-Type"]
        == f"application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"
    )
    body = json.loads(await response.read())
    assert body["apiVersion"] == f"apidiscovery.k8s.io/{version}"
    custom = body["items"][0]
    assert custom["metadata"]["name"] == "custom.metrics.k8s.io"
    v1beta2 = custom["versions"][0]
    pods = next(r for r in v1beta2["resources"] if r["resource"] == "pods")
    assert pods["scope"] == "Namespaced"
    assert {
        "subresource": "http_requests",
        "responseKind": {"group": "", "version": "", "kind": "MetricValueList"},
        "verbs": ["get"],
    } in pods["subresources"]


async def test_protobuf_clients_get_json(client: Client, fake: FakePrometheus) -> None:
    fake.samples = [pod_sample("web-0", 1)]
    response = await client.get(
        f"{CUSTOM}/v1beta2/namespaces/demo/pods/web-0/http_requests",
        headers={"Accept": "application/vnd.kubernetes.protobuf, */*"},
    )
    assert response.status == 200 and response.content_type == "application/json"


async def test_upgrades_and_other_methods_are_refused(client: Client) -> None:
    response = await client.get("/apis", headers={"Connection": "Upgrade", "Upgrade": "websocket"})
    assert response.status == 400
    response = await client.post("/apis")
    body = json.loads(await response.read())
    assert (response.status, body["reason"]) == (405, "MethodNotAllowed")


async def test_health_endpoints(client: Client) -> None:
    state: ServerState = client.state  # type: ignore[attr-defined]
    response = await client.get("/readyz")
    assert (response.status, await response.text()) == (200, "ok")
    response = await client.get("/readyz?verbose")
    assert (await response.text()).splitlines() == [
        "[+]ping ok", "[+]log ok", "[+]metric-discovery ok", "[+]shutdown ok", "readyz check passed",
    ]  # fmt: skip
    state.shutting_down = True
    response = await client.get("/readyz")
    assert response.status == 500
    assert "[-]shutdown failed: reason withheld" in await response.text()
    response = await client.get("/readyz/shutdown")
    assert (response.status, await response.text()) == (
        500,
        "internal server error: the server is shutting down\n",
    )
    response = await client.get("/readyz?verbose&exclude=shutdown&exclude=bogus")
    text = await response.text()
    assert response.status == 200
    assert "[+]shutdown excluded: ok" in text
    assert 'warn: some health checks cannot be excluded: no matches for "bogus"' in text
    for path in ("/healthz", "/livez", "/livez/ping"):
        response = await client.get(path)
        assert (response.status, await response.text()) == (200, "ok")


async def test_version_openapi_and_metrics(client: Client, fake: FakePrometheus) -> None:
    status, body = await get_json(client, "/version")
    assert (status, body["major"], body["minor"]) == (200, "1", "0")
    status, body = await get_json(client, "/openapi/v2")
    assert body["info"] == {"title": "prometheus-metrics-adapter", "version": "1.0.0"}
    assert (
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/{namespace}/{resource}/{name}/{metric}"
        in body["paths"]
    )
    assert not any(p.startswith("/apis/metrics.k8s.io") for p in body["paths"])
    status, index = await get_json(client, "/openapi/v3")
    url = index["paths"]["apis/external.metrics.k8s.io/v1beta1"]["serverRelativeURL"]
    status, doc = await get_json(client, url)
    assert status == 200 and doc["openapi"] == "3.0.0"
    fake.samples = [pod_sample("web-0", 1)]
    await client.get(f"{CUSTOM}/v1beta2/namespaces/demo/pods/web-0/http_requests")
    text = await (await client.get("/metrics")).text()
    assert 'prometheus_adapter_requests_total{code="200",group="custom.metrics.k8s.io"}' in text


def test_empty_registry_advertises_a_placeholder() -> None:
    group = ServedGroup(
        "custom.metrics.k8s.io",
        ("v1beta2",),
        list,
        APIResource("custommetrics", False, "MetricValueList"),
    )
    assert api_resource_list(group, "v1beta2")["resources"] == [
        {
            "name": "custommetrics",
            "singularName": "",
            "namespaced": False,
            "kind": "MetricValueList",
            "verbs": ["get"],
        }
    ]
