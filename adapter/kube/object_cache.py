"""Object names for `*` requests, from watch-based caches of object metadata.

The Go adapter lists objects from kube-apiserver on every `pods/*` request, throttled by
`--client-qps=5` to about 5 requests/s. Here each resource type that requests use gets an
informer: one metadata-only LIST, then a WATCH from its resourceVersion; events keep the cache
current (a pod added or relabelled shows up as soon as the event arrives), a `410 Gone` or a
failed watch leads to a fresh LIST, and steady traffic costs no API server requests at all.
"""

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapter.apimachinery.labels import Selector
from adapter.discovery.registry import SeriesInfo
from adapter.kube.api import KubeAPI, KubeAPIError
from adapter.kube.rest_mapper import GroupResource, NoResourceMatchError, ResourceInfo, RESTMapper
from adapter.providers.objects import ObjectListError
from adapter.tasks import cancel_and_wait

__all__ = [
    "METADATA_LIST_ACCEPT",
    "APIObjectLister",
    "Informer",
    "KubernetesObjectLister",
    "collection_path",
    "list_object_names",
]

log = logging.getLogger(__name__)

METADATA_LIST_ACCEPT = (
    "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json"
)
METADATA_WATCH_ACCEPT = (
    "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io,application/json"
)


def collection_path(info: ResourceInfo, namespace: str = "") -> str:
    base = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
    return (
        f"{base}/namespaces/{namespace}/{info.resource}" if namespace else f"{base}/{info.resource}"
    )


@dataclass(frozen=True, slots=True)
class ObjectMeta:
    namespace: str
    name: str
    labels: Mapping[str, str]

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> "ObjectMeta":
        meta = obj.get("metadata") or {}
        return cls(meta.get("namespace", ""), meta.get("name", ""), meta.get("labels") or {})


class Informer:
    """A list+watch cache of one resource type's object metadata, cluster-wide."""

    def __init__(
        self,
        api: KubeAPI,
        info: ResourceInfo,
        *,
        max_backoff: float = 30.0,
        field_selector: str = "",
    ) -> None:
        self._api = api
        self.info = info
        # Sent as `fieldSelector` on LIST and WATCH (e.g. `status.phase=Running` for pods):
        # the API server then reports an object leaving the selection as DELETED.
        self.field_selector = field_selector
        self._max_backoff = max_backoff
        self.objects: dict[tuple[str, str], ObjectMeta] = {}
        # Objects of each namespace ("" for cluster-scoped) in list order, built on first use
        # after a change: a request reads its namespace only, not the whole cluster.
        self._sorted: dict[str, list[ObjectMeta]] = {}
        self.resource_version = ""
        self.synced = asyncio.Event()
        self.lists = 0  # LIST calls made, for metrics and tests

    def names(self, namespace: str, selector: Selector) -> list[str]:
        """Matching names in the API server's list order (namespace, then name)."""
        metas = self._in_namespace(namespace)
        if selector.empty():
            return [meta.name for meta in metas]
        return [meta.name for meta in metas if selector.matches(meta.labels)]

    def _in_namespace(self, namespace: str) -> list[ObjectMeta]:
        """Objects of `namespace` (of every namespace when ""), sorted by (namespace, name)."""
        metas = self._sorted.get(namespace)
        if metas is None:
            keys = sorted(k for k in self.objects if not namespace or k[0] == namespace)
            metas = self._sorted[namespace] = [self.objects[k] for k in keys]
        return metas

    def _changed(self, namespace: str) -> None:
        self._sorted.pop(namespace, None)
        self._sorted.pop("", None)

    async def _list(self) -> None:
        params = {"fieldSelector": self.field_selector} if self.field_selector else None
        body = await self._api.get(collection_path(self.info), params, accept=METADATA_LIST_ACCEPT)
        self.lists += 1
        objects = [ObjectMeta.from_object(item) for item in body.get("items") or ()]
        self.objects = {(m.namespace, m.name): m for m in objects}
        self._sorted.clear()
        self.resource_version = (body.get("metadata") or {}).get("resourceVersion", "")
        self.synced.set()

    async def _watch(self) -> bool:
        """Follow events until the stream ends (True) or the cache must be relisted (False)."""
        params = {"resourceVersion": self.resource_version, "allowWatchBookmarks": "true"}
        if self.field_selector:
            params["fieldSelector"] = self.field_selector
        async for event in self._api.watch(
            collection_path(self.info), params, accept=METADATA_WATCH_ACCEPT
        ):
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                log.info("watch of %s: %s; relisting", self.info.resource, obj.get("message", obj))
                return False
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if rv:
                self.resource_version = rv
            if kind in ("ADDED", "MODIFIED"):
                meta = ObjectMeta.from_object(obj)
                self.objects[(meta.namespace, meta.name)] = meta
                self._changed(meta.namespace)
            elif kind == "DELETED":
                meta = ObjectMeta.from_object(obj)
                self.objects.pop((meta.namespace, meta.name), None)
                self._changed(meta.namespace)
        return True

    async def run(self) -> None:
        backoff = 1.0
        relist = True
        while True:
            try:
                if relist:
                    await self._list()
                relist = not await self._watch()
                backoff = 1.0
            except KubeAPIError as exc:
                log.warning("list/watch of %s failed: %s", self.info.resource, exc)
                relist = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)


class KubernetesObjectLister:
    """ObjectLister over informers started on first use of each resource type."""

    def __init__(self, api: KubeAPI, mapper: RESTMapper, *, sync_timeout: float = 5.0) -> None:
        self._api = api
        self._mapper = mapper
        self._sync_timeout = sync_timeout
        self._informers: dict[GroupResource, Informer] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def informer(self, info: ResourceInfo) -> Informer:
        informer = self._informers.get(info.group_resource)
        if informer is None:
            informer = Informer(self._api, info)
            self._informers[info.group_resource] = informer
            self._tasks.append(asyncio.get_running_loop().create_task(informer.run()))
        return informer

    async def list_names(
        self, resource: GroupResource, namespace: str, selector: Selector, source: SeriesInfo
    ) -> list[str]:
        info = resource_info(self._mapper, resource)
        informer = self.informer(info)
        if not informer.synced.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(informer.synced.wait(), self._sync_timeout)
        if informer.synced.is_set():
            return informer.names(namespace, selector)
        # The cache is not there yet (API server slow or failing): ask directly.
        return await list_object_names(self._api, info, namespace, selector)

    async def close(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks.clear()


def resource_info(mapper: RESTMapper, resource: GroupResource) -> ResourceInfo:
    try:
        return mapper.resource_for(resource)
    except NoResourceMatchError as exc:
        raise ObjectListError(str(exc)) from None


async def list_object_names(
    api: KubeAPI, info: ResourceInfo, namespace: str, selector: Selector
) -> list[str]:
    """One metadata-only LIST: the names of the objects matching `selector`."""
    try:
        body = await api.get(
            collection_path(info, namespace),
            {"labelSelector": str(selector)} if not selector.empty() else None,
            accept=METADATA_LIST_ACCEPT,
        )
    except KubeAPIError as exc:
        raise ObjectListError(str(exc)) from None
    return [ObjectMeta.from_object(item).name for item in body.get("items") or ()]


class APIObjectLister:
    """ObjectLister asking the API server on every call (one-shot tools: no watch to start)."""

    def __init__(self, api: KubeAPI, mapper: RESTMapper) -> None:
        self._api = api
        self._mapper = mapper

    async def list_names(
        self, resource: GroupResource, namespace: str, selector: Selector, source: SeriesInfo
    ) -> list[str]:
        info = resource_info(self._mapper, resource)
        return await list_object_names(self._api, info, namespace, selector)
