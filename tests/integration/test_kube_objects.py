"""Object lookup and REST mapping against the fake kube-apiserver, over real HTTPS, through
the adapter's own Kubernetes client."""

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from adapter.apimachinery.labels import parse_selector
from adapter.discovery.registry import SeriesInfo
from adapter.kube.client import KubeClient
from adapter.kube.config import load_kubeconfig
from adapter.kube.discovery_mapper import DiscoveryRESTMapper
from adapter.kube.object_cache import KubernetesObjectLister
from adapter.kube.rest_mapper import GroupResource
from harness.fake_kube_apiserver import FakeKubeAPIServer, running_fake_kube_apiserver

SOURCE: SeriesInfo = None  # type: ignore[assignment]  # the Kubernetes lister does not use it
PODS = GroupResource("", "pods")


def pod(name: str, namespace: str = "demo", **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "status": {"phase": "Running"},
    }


@pytest_asyncio.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[FakeKubeAPIServer, KubeClient]]:
    async with running_fake_kube_apiserver() as server:
        server.add_object("v1/namespaces", {"metadata": {"name": "demo"}})
        for i, app in enumerate(("web", "web", "db")):
            server.add_object("v1/pods", pod(f"p{i}", app=app))
        server.add_object("v1/pods", pod("elsewhere", "other", app="web"))
        config = load_kubeconfig(str(server.kubeconfig(tmp_path / "kubeconfig")))
        client = KubeClient(config, qps=0)
        try:
            yield server, client
        finally:
            await client.close()


async def wait_for(condition: Any, timeout: float = 1.0) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout}s")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def test_selected_pods_from_the_watch_cache(
    cluster: tuple[FakeKubeAPIServer, KubeClient],
) -> None:
    server, client = cluster
    mapper = DiscoveryRESTMapper(client)
    await mapper.refresh()
    lister = KubernetesObjectLister(client, mapper)
    web = parse_selector("app=web")
    try:
        assert await lister.list_names(PODS, "demo", web, SOURCE) == ["p0", "p1"]
        assert await lister.list_names(PODS, "demo", parse_selector("app in (db)"), SOURCE) == [
            "p2"
        ]
        # After warm-up, 100 requests cost no list calls to the API server.
        lists = server.count("GET", "/api/v1/pods")
        for _ in range(100):
            assert await lister.list_names(PODS, "demo", web, SOURCE) == ["p0", "p1"]
        assert server.count("GET", "/api/v1/pods") == lists
        assert server.count("GET", "/api/v1/namespaces/demo/pods") == 0
        # A pod added, and one relabelled, show up within a second.
        server.add_object("v1/pods", pod("p3", app="web"))
        server.set_labels("v1/pods", "p2", {"app": "web"}, namespace="demo")

        async def names() -> list[str]:
            return await lister.list_names(PODS, "demo", web, SOURCE)

        seen: list[str] = []

        def refreshed() -> bool:
            return seen == ["p0", "p1", "p2", "p3"]

        started = time.monotonic()
        while not refreshed() and time.monotonic() - started < 1.0:
            seen = await names()
            await asyncio.sleep(0.01)
        assert refreshed(), seen
        # A deleted pod disappears.
        server.delete_object("v1/pods", "p0", namespace="demo")
        started = time.monotonic()
        while "p0" in (seen := await names()) and time.monotonic() - started < 1.0:
            await asyncio.sleep(0.01)
        assert seen == ["p1", "p2", "p3"]
    finally:
        await lister.close()


async def test_resync_after_watch_expiry_and_410(
    cluster: tuple[FakeKubeAPIServer, KubeClient],
) -> None:
    server, client = cluster
    mapper = DiscoveryRESTMapper(client)
    await mapper.refresh()
    lister = KubernetesObjectLister(client, mapper)
    web = parse_selector("app=web")
    try:
        assert await lister.list_names(PODS, "demo", web, SOURCE) == ["p0", "p1"]
        await wait_for(lambda: server.open_watches >= 1)
        # Server-side timeout: the stream ends and the informer watches again.
        server.expire_watches()
        server.add_object("v1/pods", pod("p4", app="web"))
        started = time.monotonic()
        while "p4" not in await lister.list_names(PODS, "demo", web, SOURCE):
            assert time.monotonic() - started < 2
            await asyncio.sleep(0.01)
    finally:
        await lister.close()


async def test_resource_created_after_start_up_is_discovered(
    cluster: tuple[FakeKubeAPIServer, KubeClient],
) -> None:
    server, client = cluster
    mapper = DiscoveryRESTMapper(client, min_refresh_interval=0)
    await mapper.refresh()
    with pytest.raises(LookupError):
        mapper.resource_for(GroupResource("", "brand"))
    server.add_resource("cheese.io", "v1", "brands", "Brand", namespaced=True)
    # The miss above scheduled a refresh; a new lookup after it finds the resource.
    await wait_for(lambda: mapper.generation >= 2, timeout=2)
    assert mapper.resource_for(GroupResource("", "brand")).group_resource == GroupResource(
        "cheese.io", "brands"
    )
