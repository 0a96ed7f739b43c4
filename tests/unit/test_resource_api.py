"""metrics.k8s.io/v1beta1 over real HTTP: paths, selectors, JSON shapes and 404s."""

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from adapter.prometheus.client import Sample
from adapter.providers.resource import ResourceMetricsProvider
from adapter.server.metrics import AdapterMetrics
from adapter.server.middleware import error_middleware
from adapter.server.resource_api import (
    RESOURCE_GROUP,
    RESOURCE_VERSIONS,
    add_resource_metrics_routes,
    resource_metrics_group_resources,
)
from tests.unit.test_resource_provider import (
    NOW,
    FakeObjects,
    FakePrometheus,
    cpu_nodes,
    cpu_pods,
    mem_nodes,
    mem_pods,
    node,
    pod,
    rules,
)

BASE = "/apis/metrics.k8s.io/v1beta1"
CREATED = "2023-11-14T22:13:20Z"  # NOW
SAMPLED = "2023-11-14T22:13:10Z"  # NOW - 10


def samples(label: str, *names: str, value: float = 1.0, **extra: str) -> list[Sample]:
    return [Sample({label: n, **extra}, value, NOW - 10) for n in names]


def prometheus() -> FakePrometheus:
    return FakePrometheus(
        {
            cpu_nodes('node=~"n1|n2|quiet"'): samples("node", "n1", "n2", value=0.25),
            mem_nodes('node=~"n1|n2|quiet"'): samples("node", "n1", "n2", value=1048576),
            cpu_nodes('node="n1"'): samples("node", "n1", value=0.25),
            mem_nodes('node="n1"'): samples("node", "n1", value=1048576),
            cpu_nodes('node="n2"'): samples("node", "n2", value=0.25),
            mem_nodes('node="n2"'): samples("node", "n2", value=1048576),
            cpu_pods("ns", 'pod=~"p1|p2|quiet"'): samples("pod", "p1", "p2", container="c"),
            mem_pods("ns", 'pod=~"p1|p2|quiet"'): samples("pod", "p1", "p2", container="c"),
            cpu_pods("ns", 'pod=~"p2|quiet"'): samples("pod", "p2", container="c"),
            mem_pods("ns", 'pod=~"p2|quiet"'): samples("pod", "p2", container="c"),
            cpu_pods("ns", 'pod="p1"'): samples("pod", "p1", container="c"),
            mem_pods("ns", 'pod="p1"'): samples("pod", "p1", container="c"),
            cpu_pods("ns", 'pod="p2"'): samples("pod", "p2", container="c"),
            mem_pods("ns", 'pod="p2"'): samples("pod", "p2", container="c"),
            cpu_pods("other", 'pod="p1"'): samples("pod", "p1", container="c", value=2),
            mem_pods("other", 'pod="p1"'): samples("pod", "p1", container="c", value=3100),
        }
    )


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    objects = FakeObjects(
        [pod("ns", "p1", app="web"), pod("ns", "p2"), pod("ns", "quiet"), pod("other", "p1")],
        [node("n1", zone="a"), node("n2"), node("quiet")],
    )
    provider = ResourceMetricsProvider(rules(), prometheus(), objects, clock=lambda: NOW)
    app = web.Application(middlewares=[error_middleware(AdapterMetrics())])
    add_resource_metrics_routes(app, provider, clock=lambda: NOW)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def get(
    client: TestClient[web.Request, web.Application], path: str, status: int = 200
) -> Any:
    response = await client.get(path)
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    return await response.json()


def node_item(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "creationTimestamp": CREATED}
    if labels:
        metadata["labels"] = labels
    return {
        "metadata": metadata,
        "timestamp": SAMPLED,
        "window": "3m0s",
        "usage": {"cpu": "250m", "memory": "1Mi"},
    }


def pod_item(
    ns: str, name: str, labels: dict[str, str] | None = None, usage: tuple[str, str] = ("1", "1")
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": ns, "creationTimestamp": CREATED}
    if labels:
        metadata["labels"] = labels
    return {
        "metadata": metadata,
        "timestamp": SAMPLED,
        "window": "3m0s",
        "containers": [{"name": "c", "usage": {"cpu": usage[0], "memory": usage[1]}}],
    }


def node_list(*items: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "NodeMetricsList",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {},
        "items": list(items),
    }


def pod_list(*items: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "PodMetricsList",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {},
        "items": list(items),
    }


def not_found(message: str, details: dict[str, str]) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "NotFound",
        "details": details,
        "code": 404,
    }


async def test_list_nodes(client: TestClient[web.Request, web.Application]) -> None:
    assert await get(client, f"{BASE}/nodes") == node_list(
        node_item("n1", {"zone": "a"}), node_item("n2")
    )


async def test_list_nodes_with_selectors(client: TestClient[web.Request, web.Application]) -> None:
    assert await get(client, f"{BASE}/nodes?labelSelector=zone%3Da") == node_list(
        node_item("n1", {"zone": "a"})
    )
    assert await get(client, f"{BASE}/nodes?fieldSelector=metadata.name%3Dn2") == node_list(
        node_item("n2")
    )
    assert await get(client, f"{BASE}/nodes?labelSelector=zone%3Db") == node_list()


async def test_get_node(client: TestClient[web.Request, web.Application]) -> None:
    assert await get(client, f"{BASE}/nodes/n1") == {
        "kind": "NodeMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        **node_item("n1", {"zone": "a"}),
    }


async def test_get_node_not_found(client: TestClient[web.Request, web.Application]) -> None:
    assert await get(client, f"{BASE}/nodes/gone", 404) == not_found(
        'node "gone" not found', {"name": "gone", "kind": "node"}
    )
    assert await get(client, f"{BASE}/nodes/quiet", 404) == not_found(
        'nodemetrics.metrics.k8s.io "quiet" not found',
        {"name": "quiet", "group": "metrics.k8s.io", "kind": "nodemetrics"},
    )


async def test_list_pods_all_namespaces(client: TestClient[web.Request, web.Application]) -> None:
    assert await get(client, f"{BASE}/pods") == pod_list(
        pod_item("ns", "p1", {"app": "web"}),
        pod_item("ns", "p2"),
        pod_item("other", "p1", usage=("2", "3100")),
    )


async def test_list_pods_in_namespace(client: TestClient[web.Request, web.Application]) -> None:
    assert await get(client, f"{BASE}/namespaces/ns/pods") == pod_list(
        pod_item("ns", "p1", {"app": "web"}), pod_item("ns", "p2")
    )
    assert await get(client, f"{BASE}/namespaces/empty/pods") == pod_list()


async def test_list_pods_with_selectors(client: TestClient[web.Request, web.Application]) -> None:
    assert await get(client, f"{BASE}/namespaces/ns/pods?labelSelector=app") == pod_list(
        pod_item("ns", "p1", {"app": "web"})
    )
    assert await get(
        client, f"{BASE}/pods?fieldSelector=metadata.namespace%3Dother,metadata.name%3Dp1"
    ) == pod_list(pod_item("other", "p1", usage=("2", "3100")))
    assert await get(
        client, f"{BASE}/namespaces/ns/pods?fieldSelector=metadata.name!%3Dp1"
    ) == pod_list(pod_item("ns", "p2"))


async def test_get_pod(client: TestClient[web.Request, web.Application]) -> None:
    assert await get(client, f"{BASE}/namespaces/other/pods/p1") == {
        "kind": "PodMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        **pod_item("other", "p1", usage=("2", "3100")),
    }


async def test_get_pod_not_found(client: TestClient[web.Request, web.Application]) -> None:
    assert await get(client, f"{BASE}/namespaces/ns/pods/gone", 404) == not_found(
        'pods "gone" not found', {"name": "gone", "kind": "pods"}
    )
    assert await get(client, f"{BASE}/namespaces/ns/pods/quiet", 404) == not_found(
        'podmetrics.metrics.k8s.io "ns/quiet" not found',
        {"name": "ns/quiet", "group": "metrics.k8s.io", "kind": "podmetrics"},
    )


@pytest.mark.parametrize(
    "query",
    ["labelSelector=a%20b%20c", "fieldSelector=spec.nodeName%3Dx", "fieldSelector=metadata.name"],
)
async def test_bad_selectors_are_400(
    client: TestClient[web.Request, web.Application], query: str
) -> None:
    for path in (f"{BASE}/nodes", f"{BASE}/pods", f"{BASE}/namespaces/ns/pods"):
        body = await get(client, f"{path}?{query}", 400)
        assert body["reason"] == "BadRequest"
        assert body["code"] == 400


async def test_unknown_paths_are_404(client: TestClient[web.Request, web.Application]) -> None:
    for path in (f"{BASE}/namespaces/ns/nodes", f"{BASE}/nodes/n1/extra", f"{BASE}/services"):
        assert (await get(client, path, 404))["reason"] == "NotFound"


def test_group_resources() -> None:
    assert RESOURCE_GROUP == "metrics.k8s.io"
    assert RESOURCE_VERSIONS == ("v1beta1",)
    assert [r.as_json() for r in resource_metrics_group_resources()] == [
        {
            "name": "nodes",
            "singularName": "",
            "namespaced": False,
            "kind": "NodeMetrics",
            "verbs": ["get", "list"],
        },
        {
            "name": "pods",
            "singularName": "",
            "namespaced": True,
            "kind": "PodMetrics",
            "verbs": ["get", "list"],
        },
    ]


# --- conversions: what `kubectl get pods.metrics.k8s.io` asks for ---------------------------

KUBECTL_GET_ACCEPT = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,"
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)
COLUMNS = (
    '"columnDefinitions":['
    '{"name":"Name","type":"string","format":"name","description":"Name of the resource",'
    '"priority":0},'
    '{"name":"cpu","type":"string","format":"quantity","description":"","priority":0},'
    '{"name":"memory","type":"string","format":"quantity","description":"","priority":0},'
    '{"name":"Window","type":"string","format":"duration","description":"","priority":0}]'
)


async def raw(
    client: TestClient[web.Request, web.Application],
    path: str,
    accept: str = KUBECTL_GET_ACCEPT,
    status: int = 200,
) -> bytes:
    response = await client.get(path, headers={"Accept": accept, "User-Agent": "kubectl/v1.30"})
    assert response.status == status, await response.text()
    return await response.read()


async def test_pod_table_is_metrics_servers(
    client: TestClient[web.Request, web.Application],
) -> None:
    assert await raw(client, f"{BASE}/namespaces/ns/pods") == (
        b'{"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":{},'
        + COLUMNS.encode()
        + b',"rows":['
        b'{"cells":["p1","1","1","3m0s"],"object":{"kind":"PartialObjectMetadata",'
        b'"apiVersion":"meta.k8s.io/v1","metadata":{"name":"p1","namespace":"ns",'
        b'"creationTimestamp":"2023-11-14T22:13:20Z","labels":{"app":"web"}}}},'
        b'{"cells":["p2","1","1","3m0s"],"object":{"kind":"PartialObjectMetadata",'
        b'"apiVersion":"meta.k8s.io/v1","metadata":{"name":"p2","namespace":"ns",'
        b'"creationTimestamp":"2023-11-14T22:13:20Z"}}}]}\n'
    )


async def test_node_table_single_object_and_include_object(
    client: TestClient[web.Request, web.Application],
) -> None:
    accept = "application/json;as=Table;v=v1beta1;g=meta.k8s.io"
    table = json.loads(await raw(client, f"{BASE}/nodes/n1?includeObject=Object", accept))
    assert table["apiVersion"] == "meta.k8s.io/v1beta1"
    assert table["rows"] == [
        {
            "cells": ["n1", "250m", "1Mi", "3m0s"],
            "object": {
                "kind": "NodeMetrics",
                "apiVersion": "metrics.k8s.io/v1beta1",
                **node_item("n1", {"zone": "a"}),
            },
        }
    ]
    table = json.loads(await raw(client, f"{BASE}/nodes?includeObject=None", accept))
    assert [row["object"] for row in table["rows"]] == [None, None]


async def test_empty_table_has_no_columns(
    client: TestClient[web.Request, web.Application],
) -> None:
    # metrics-server takes the columns from the first object; kubectl prints "No resources".
    assert await raw(client, f"{BASE}/namespaces/empty/pods") == (
        b'{"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":{},'
        b'"columnDefinitions":null,"rows":null}\n'
    )


async def test_table_options_are_validated(
    client: TestClient[web.Request, web.Application],
) -> None:
    body = json.loads(await raw(client, f"{BASE}/nodes?includeObject=All", status=400))
    assert body["message"] == (
        'Unable to convert to Table as requested: includeObject: Invalid value: "All": '
        "must be 'Metadata', 'Object', 'None', or empty"
    )


async def test_partial_object_metadata(client: TestClient[web.Request, web.Application]) -> None:
    accept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
    assert json.loads(await raw(client, f"{BASE}/nodes?labelSelector=zone%3Da", accept)) == {
        "kind": "PartialObjectMetadataList",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "items": [
            {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": node_item("n1", {"zone": "a"})["metadata"],
            }
        ],
    }
    single = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
    assert json.loads(await raw(client, f"{BASE}/nodes/n2", single))["metadata"]["name"] == "n2"
    # A list cannot be one object: a 406 written raw (indented, no newline, no details).
    assert await raw(client, f"{BASE}/pods", single, status=406) == (
        b'{\n  "kind": "Status",\n  "apiVersion": "v1",\n  "metadata": {},\n'
        b'  "status": "Failure",\n  "message": "you requested PartialObjectMetadata, but the '
        b'requested object is a list (*metrics.PodMetricsList)",\n'
        b'  "reason": "NotAcceptable",\n  "code": 406\n}'
    )


async def test_route_accept_check_comes_first(
    client: TestClient[web.Request, web.Application],
) -> None:
    # go-restful's 406 for a list route lists its watch streams too; `application/*` is not a
    # wildcard there, but negotiates JSON for the Status itself.
    body = await raw(client, f"{BASE}/pods", "application/*", status=406)
    assert body == (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        b'"message":"406: Not Acceptable\\n\\nAvailable representations: application/json, '
        b"application/yaml, application/vnd.kubernetes.protobuf, application/json;stream=watch, "
        b'application/vnd.kubernetes.protobuf;stream=watch","reason":"NotAcceptable",'
        b'"details":{},"code":406}\n'
    )
    get_route = json.loads(await raw(client, f"{BASE}/nodes/n1", "text/html", status=406))
    assert get_route["message"].endswith(
        "application/json, application/yaml, application/vnd.kubernetes.protobuf"
    )
