"""--namespace-query-ttl against a real Prometheus: the same answers as per-request queries,
from one namespace-wide query per metric and namespace, read with the real kubectl."""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from harness.adapter import AdapterProcess
from harness.kubectl import kubectl_get_raw, write_kubeconfig
from tests.integration.conftest import DEMO_CONFIG, Stack

pytestmark = pytest.mark.asyncio(loop_scope="module")

CUSTOM = "/apis/custom.metrics.k8s.io"
PATHS = [
    f"{CUSTOM}/v1beta2/namespaces/demo/pods/*/http_requests_per_second",
    f"{CUSTOM}/v1beta2/namespaces/demo/pods/*/http_requests_per_second?labelSelector=service%3Dweb",
    f"{CUSTOM}/v1beta1/namespaces/demo/pods/web-1/http_requests_per_second",
    f"{CUSTOM}/v1beta2/namespaces/demo/pods/web-2/memory_usage_bytes",
    f"{CUSTOM}/v1beta2/namespaces/demo/pods/*/http_requests_per_second?metricLabelSelector=service%3Dweb",
    f"{CUSTOM}/v1beta2/namespaces/demo/services/web/http_requests_per_second",
]
SHARED_QUERY = 'sum(irate(http_requests_total{namespace="demo",pod!=""}[1m])) by (pod)'


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(stack: Stack, tmp_path_factory: Any) -> AsyncIterator[Path]:
    """A second adapter on the same Prometheus, sharing queries for a minute."""
    adapter = AdapterProcess(DEMO_CONFIG, stack.prometheus.url, ["--namespace-query-ttl=1m"])
    try:
        await adapter.start()
        yield write_kubeconfig(
            tmp_path_factory.mktemp("shared") / "config",
            adapter.url,
            ca_file=str(adapter.ca_file),
            token="no-cluster",
        )
    finally:
        await adapter.close()


async def get(path: str, kubeconfig: Path) -> Any:
    code, out, err = await kubectl_get_raw(path, kubeconfig=kubeconfig)
    assert code == 0, f"{path}: {err}"
    body = json.loads(out)
    for item in body["items"]:
        item.pop("timestamp")
    return body


async def queries_until(stack: Stack, before: int, last: str) -> list[str]:
    """The queries logged after `before`, up to and including `last` (Prometheus writes its
    query log asynchronously, in order)."""
    for _ in range(200):
        logged = stack.prometheus.query_log()[before:]
        if last in logged:
            return logged[: logged.index(last) + 1]
        await asyncio.sleep(0.02)
    return logged


async def test_shared_queries_give_the_per_request_answers(stack: Stack, shared: Path) -> None:
    for path in PATHS:
        assert await get(path, shared) == await get(path, stack.kubeconfig), path


async def test_one_namespace_query_answers_every_request_within_the_ttl(
    stack: Stack, shared: Path
) -> None:
    for path in PATHS:  # every shared query is now kept (for a minute)
        await get(path, shared)
    assert SHARED_QUERY in stack.prometheus.query_log()
    before = len(stack.prometheus.query_log())
    for path in PATHS:
        await get(path, shared)
    # A request to the other adapter marks the end: Prometheus logs queries in order.
    marker = 'sum(irate(http_requests_total{namespace="demo"}[1m])) by (namespace)'
    await get(
        f"{CUSTOM}/v1beta2/namespaces/demo/metrics/http_requests_per_second", stack.kubeconfig
    )
    assert await queries_until(stack, before, marker) == [marker]
