"""The live REST mapper and the watch-based object cache, over an in-memory KubeAPI."""

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from adapter.apimachinery.labels import EVERYTHING, parse_selector
from adapter.discovery.registry import SeriesInfo
from adapter.kube.api import KubeAPIError
from adapter.kube.discovery_mapper import DiscoveryRESTMapper
from adapter.kube.object_cache import Informer, KubernetesObjectLister
from adapter.kube.rest_mapper import GroupResource, NoResourceMatchError, ResourceInfo
from adapter.naming.resource_converter import new_resource_converter
from adapter.providers.objects import ObjectListError

PODS_INFO = ResourceInfo("", "v1", "pods", "pod", "Pod", True)
SOURCE: SeriesInfo = None  # type: ignore[assignment]  # unused by the Kubernetes lister


class MemoryKubeAPI:
    """GET answers from a table; each watch streams from a queue the test feeds."""

    def __init__(self, routes: dict[str, Any] | None = None) -> None:
        self.routes: dict[str, Any] = routes or {}
        self.gets: list[tuple[str, Mapping[str, str] | None, str | None]] = []
        self.watches: list[asyncio.Queue[dict[str, Any] | None]] = []
        self.watch_params: list[Mapping[str, str] | None] = []
        self.new_watch = asyncio.Event()

    async def get(
        self, path: str, params: Mapping[str, str] | None = None, *, accept: str | None = None
    ) -> dict[str, Any]:
        self.gets.append((path, params, accept))
        answer = self.routes.get(path)
        if answer is None:
            raise KubeAPIError(404, "NotFound", f"{path} not found", path=path)
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(accept)  # type: ignore[no-any-return]
        return answer  # type: ignore[no-any-return]

    async def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    async def watch(
        self, path: str, params: Mapping[str, str] | None = None, *, accept: str | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.watches.append(queue)
        self.watch_params.append(params)
        self.new_watch.set()
        while (event := await queue.get()) is not None:
            yield event

    def list_count(self, path: str) -> int:
        return sum(1 for p, _, _ in self.gets if p == path)

    async def next_watch(self, count: int) -> asyncio.Queue[dict[str, Any] | None]:
        while len(self.watches) < count:
            self.new_watch.clear()
            await asyncio.wait_for(self.new_watch.wait(), 5)
        return self.watches[count - 1]


def resource_list(group_version: str, *resources: tuple[str, str, str, bool]) -> dict[str, Any]:
    return {
        "kind": "APIResourceList",
        "groupVersion": group_version,
        "resources": [
            {"name": n, "singularName": s, "kind": k, "namespaced": ns, "verbs": ["list", "watch"]}
            for n, s, k, ns in resources
        ],
    }


def legacy_routes() -> dict[str, Any]:
    return {
        "/api": {"kind": "APIVersions", "versions": ["v1"]},
        "/api/v1": resource_list("v1", ("pods", "pod", "Pod", True), ("pods/status", "", "Pod", True), ("nodes", "node", "Node", False)),
        "/apis": {
            "kind": "APIGroupList",
            "groups": [
                {"name": "cheese.io", "versions": [{"groupVersion": "cheese.io/v2", "version": "v2"}], "preferredVersion": {"groupVersion": "cheese.io/v2", "version": "v2"}},
                {"name": "broken.io", "versions": [{"groupVersion": "broken.io/v1", "version": "v1"}]},
                {"name": "custom.metrics.k8s.io", "versions": [{"groupVersion": "custom.metrics.k8s.io/v1beta2", "version": "v1beta2"}]},
            ],
        },
        "/apis/cheese.io/v2": resource_list("cheese.io/v2", ("brands", "brand", "Brand", False)),
        "/apis/broken.io/v1": KubeAPIError(503, "ServiceUnavailable", "the server is currently unable to handle the request"),
    }  # fmt: skip


async def test_legacy_discovery_and_refresh_on_miss() -> None:
    api = MemoryKubeAPI(legacy_routes())
    mapper = DiscoveryRESTMapper(api, min_refresh_interval=0)
    # Before the first refresh the built-in table answers.
    assert mapper.resource_for(GroupResource("", "pod")).kind == "Pod"
    await mapper.refresh()
    assert mapper.synced.is_set() and mapper.generation == 1
    brands = mapper.resource_for(GroupResource("", "brand"))
    assert (brands.group, brands.version, brands.resource, brands.namespaced) == (
        "cheese.io",
        "v2",
        "brands",
        False,
    )
    # Our own groups are never asked about, and one broken group does not hide the others.
    assert not any(p.startswith("/apis/custom.metrics") for p, _, _ in api.gets)
    # A resource created after start-up: the miss triggers a background refresh.
    api.routes["/apis/cheese.io/v2"] = resource_list(
        "cheese.io/v2", ("brands", "brand", "Brand", False), ("wheels", "wheel", "Wheel", True)
    )
    with pytest.raises(NoResourceMatchError):
        mapper.resource_for(GroupResource("", "wheel"))
    for _ in range(100):
        if mapper.generation == 2:
            break
        await asyncio.sleep(0.01)
    assert mapper.resource_for(GroupResource("cheese.io", "wheels")).kind == "Wheel"


async def test_aggregated_discovery_is_two_requests() -> None:
    def aggregated(group: str, version: str, *resources: tuple[str, str, str]) -> dict[str, Any]:
        return {
            "metadata": {"name": group},
            "versions": [{"version": version, "resources": [
                {"resource": r, "singularResource": s, "scope": scope, "responseKind": {"kind": k}} for r, s, k, scope in
                [(*res, "Namespaced" if res[0] != "nodes" else "Cluster") for res in resources]
            ]}],
        }  # fmt: skip

    api = MemoryKubeAPI(
        {
            "/api": {"kind": "APIGroupDiscoveryList", "items": [aggregated("", "v1", ("pods", "pod", "Pod"), ("nodes", "node", "Node"))]},
            "/apis": {"kind": "APIGroupDiscoveryList", "items": [aggregated("apps", "v1", ("deployments", "deployment", "Deployment")), aggregated("metrics.k8s.io", "v1beta1", ("pods", "", "PodMetrics"))]},
        }
    )  # fmt: skip
    mapper = DiscoveryRESTMapper(api)
    await mapper.refresh()
    assert [p for p, _, _ in api.gets] == ["/api", "/apis"]
    assert mapper.resource_for(GroupResource("", "deployment")).group == "apps"
    assert not mapper.resource_for(GroupResource("", "nodes")).namespaced
    # metrics.k8s.io's pods (our own group) must not shadow core pods.
    assert mapper.resource_for(GroupResource("", "pods")).kind == "Pod"


async def test_failed_discovery_keeps_the_table_and_run_retries() -> None:
    api = MemoryKubeAPI(
        {
            "/api": KubeAPIError(0, "ConnectionError", "refused"),
            "/api/v1": KubeAPIError(0, "ConnectionError", "refused"),
        }
    )
    mapper = DiscoveryRESTMapper(api)
    await mapper.refresh()
    assert not mapper.synced.is_set() and mapper.generation == 0
    assert mapper.resource_for(GroupResource("", "pods")).kind == "Pod"  # built-in table
    task = asyncio.create_task(mapper.run())
    try:
        api.routes.update(legacy_routes())
        await asyncio.wait_for(mapper.synced.wait(), 5)
    finally:
        task.cancel()


async def test_converter_forgets_misses_when_the_mapper_learns() -> None:
    api = MemoryKubeAPI(legacy_routes())
    mapper = DiscoveryRESTMapper(api, min_refresh_interval=3600)
    converter, _ = new_resource_converter(mapper, "<<.Resource>>", {})
    assert converter.resource_for_label("brand") is None  # not in the built-in table
    await mapper.refresh()
    assert converter.resource_for_label("brand") == GroupResource("cheese.io", "brands")


def pod(name: str, namespace: str = "ns", rv: str = "1", **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": rv, "labels": labels}
    }


def pod_list(rv: str, *pods: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "PartialObjectMetadataList",
        "metadata": {"resourceVersion": rv},
        "items": list(pods),
    }


async def wait_until(condition: Any) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


async def test_informer_follows_events_and_relists_on_410() -> None:
    api = MemoryKubeAPI(
        {
            "/api/v1/pods": pod_list(
                "10", pod("a", app="web"), pod("b", app="db"), pod("c", "other", app="web")
            )
        }
    )
    informer = Informer(api, PODS_INFO)
    task = asyncio.create_task(informer.run())
    try:
        watch = await api.next_watch(1)
        assert api.watch_params[0] == {"resourceVersion": "10", "allowWatchBookmarks": "true"}
        web = parse_selector("app=web")
        assert informer.names("ns", web) == ["a"]
        assert informer.names("", web) == ["a", "c"]
        await watch.put({"type": "ADDED", "object": pod("d", rv="11", app="web")})
        await watch.put({"type": "MODIFIED", "object": pod("b", rv="12", app="web")})
        await watch.put({"type": "DELETED", "object": pod("a", rv="13", app="web")})
        await wait_until(lambda: informer.resource_version == "13")
        assert informer.names("ns", web) == ["b", "d"]
        # The stream ends (a server-side timeout): watch again from the last version, no LIST.
        await watch.put(None)
        await api.next_watch(2)
        assert api.watch_params[1] == {"resourceVersion": "13", "allowWatchBookmarks": "true"}
        assert informer.lists == 1
        # 410 Gone: relist, then watch from the new list's version.
        api.routes["/api/v1/pods"] = pod_list("20", pod("z", app="web"))
        await api.watches[1].put(
            {
                "type": "ERROR",
                "object": {
                    "kind": "Status",
                    "code": 410,
                    "reason": "Expired",
                    "message": "too old resource version",
                },
            }
        )
        await api.next_watch(3)
        assert informer.lists == 2
        assert informer.names("ns", EVERYTHING) == ["z"]
    finally:
        task.cancel()


async def test_lister_uses_one_informer_and_no_api_calls_after_warm_up() -> None:
    api = MemoryKubeAPI({"/api/v1/pods": pod_list("5", pod("a", app="web"), pod("b", app="web"))})
    mapper = DiscoveryRESTMapper(api)
    lister = KubernetesObjectLister(api, mapper)
    try:
        web = parse_selector("app=web")
        assert await lister.list_names(GroupResource("", "pods"), "ns", web, SOURCE) == ["a", "b"]
        await api.next_watch(1)
        before = len(api.gets)
        for _ in range(100):
            assert await lister.list_names(GroupResource("", "pods"), "ns", web, SOURCE) == [
                "a",
                "b",
            ]
        assert len(api.gets) == before
    finally:
        await lister.close()


async def test_lister_falls_back_to_a_direct_list_and_reports_errors() -> None:
    calls = 0

    def slow_list(accept: str | None) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise KubeAPIError(0, "Timeout", "the informer's list timed out")
        return pod_list("7", pod("x", app="web"))

    api = MemoryKubeAPI(
        {
            "/api/v1/namespaces/ns/pods": pod_list("7", pod("x", app="web")),
            "/api/v1/pods": slow_list,
        }
    )
    lister = KubernetesObjectLister(api, DiscoveryRESTMapper(api), sync_timeout=0.05)
    try:
        names = await lister.list_names(
            GroupResource("", "pods"), "ns", parse_selector("app=web"), SOURCE
        )
        assert names == ["x"]
        assert ("/api/v1/namespaces/ns/pods", {"labelSelector": "app=web"}) in [
            (p, q) for p, q, _ in api.gets
        ]
        with pytest.raises(ObjectListError):
            await lister.list_names(GroupResource("", "nosuchthings"), "ns", EVERYTHING, SOURCE)
    finally:
        await lister.close()
