"""A RESTMapper filled from live API discovery.

The Go adapter builds its REST mapper once at start-up, one request per API group (minutes
behind client-side throttling on clusters with hundreds of CRDs, Go issue #573), and never
refreshes it (`--discovery-interval` is accepted but ignored). Here:
- aggregated discovery (`apidiscovery.k8s.io/v2`, Kubernetes >= 1.26) fetches every group's
  resources in two requests (`/api` and `/apis`); older servers get the per-group requests,
  run concurrently;
- the table refreshes every `--discovery-interval` (when > 0) and, rate-limited, when a
  lookup misses, so a resource type created after start-up becomes usable without a restart;
- until the first refresh succeeds, and for groups discovery cannot reach, the built-in
  table answers.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from adapter.kube.api import KubeAPI, KubeAPIError
from adapter.kube.rest_mapper import (
    BUILTIN_RESOURCES,
    GroupResource,
    NoResourceMatchError,
    ResourceInfo,
    StaticRESTMapper,
)

__all__ = ["DiscoveryRESTMapper", "parse_aggregated_discovery", "parse_resource_list"]

log = logging.getLogger(__name__)

AGGREGATED_ACCEPT = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
    "application/json"
)
# Our own groups are served by this process: asking the API server about them is a loop.
OWN_GROUPS = frozenset({"custom.metrics.k8s.io", "external.metrics.k8s.io", "metrics.k8s.io"})


def _info(
    group: str, version: str, name: str, singular: str, kind: str, namespaced: bool
) -> ResourceInfo:
    return ResourceInfo(group, version, name, singular or kind.lower(), kind, namespaced)


def parse_resource_list(group: str, version: str, body: Mapping[str, Any]) -> list[ResourceInfo]:
    """An APIResourceList's resources (subresources such as `pods/status` skipped)."""
    return [
        _info(
            group,
            version,
            r["name"],
            r.get("singularName", ""),
            r.get("kind", ""),
            bool(r.get("namespaced")),
        )
        for r in body.get("resources") or ()
        if "/" not in r.get("name", "/")
    ]


def parse_aggregated_discovery(body: Mapping[str, Any]) -> list[ResourceInfo]:
    """An APIGroupDiscoveryList's resources at each group's preferred (first) version."""
    infos = []
    for item in body.get("items") or ():
        group = (item.get("metadata") or {}).get("name", "")
        versions = item.get("versions") or ()
        if not versions or group in OWN_GROUPS:
            continue
        version = versions[0].get("version", "")
        for r in versions[0].get("resources") or ():
            kind = (r.get("responseKind") or {}).get("kind", "")
            infos.append(
                _info(
                    group,
                    version,
                    r["resource"],
                    r.get("singularResource", ""),
                    kind,
                    r.get("scope") == "Namespaced",
                )
            )
    return infos


class DiscoveryRESTMapper:
    """A RESTMapper over the API server's discovery documents, refreshed in the background."""

    def __init__(
        self,
        api: KubeAPI,
        *,
        refresh_interval: float = 0.0,
        min_refresh_interval: float = 10.0,
        concurrency: int = 8,
        clock: Any = time.monotonic,
    ) -> None:
        self._api = api
        self._refresh_interval = refresh_interval
        self._min_refresh_interval = min_refresh_interval
        self._concurrency = concurrency
        self._clock = clock
        self._table = StaticRESTMapper(BUILTIN_RESOURCES)
        self._last_refresh = float("-inf")
        self._refreshing: asyncio.Task[None] | None = None
        self.generation = 0  # bumped on every successful refresh
        self.synced = asyncio.Event()

    def resource_for(self, partial: GroupResource) -> ResourceInfo:
        try:
            return self._table.resource_for(partial)
        except NoResourceMatchError:
            self._refresh_soon()
            raise

    def known_resources(self) -> Iterable[ResourceInfo]:
        return self._table.known_resources()

    def _refresh_soon(self) -> None:
        """A miss may be a resource created since the last refresh: refresh in the background,
        at most every `min_refresh_interval` seconds."""
        if self._refreshing is not None and not self._refreshing.done():
            return
        if self._clock() - self._last_refresh < self._min_refresh_interval:
            return
        # Without a running loop (a synchronous caller) the next refresh will do.
        with contextlib.suppress(RuntimeError):
            self._refreshing = asyncio.get_running_loop().create_task(self.refresh())

    async def refresh(self) -> None:
        self._last_refresh = self._clock()
        try:
            infos = await self._aggregated() or await self._legacy()
        except KubeAPIError as exc:
            log.warning("API discovery failed, keeping the previous resource table: %s", exc)
            return
        # Core resources first, then groups in discovery order: client-go's priority.
        self._table = StaticRESTMapper([*infos, *BUILTIN_RESOURCES])
        self.generation += 1
        self.synced.set()
        log.info("API discovery: %d resources", len(infos))

    async def _aggregated(self) -> list[ResourceInfo]:
        """Both aggregated documents, or [] when the server does not serve them."""
        infos: list[ResourceInfo] = []
        for path in ("/api", "/apis"):
            body = await self._api.get(path, accept=AGGREGATED_ACCEPT)
            if body.get("kind") != "APIGroupDiscoveryList":
                return []
            infos += parse_aggregated_discovery(body)
        return infos

    async def _legacy(self) -> list[ResourceInfo]:
        core = await self._api.get("/api/v1")
        groups = (await self._api.get("/apis")).get("groups") or ()
        preferred = [
            (g["name"], (g.get("preferredVersion") or g["versions"][0])["version"])
            for g in groups
            if g.get("name") not in OWN_GROUPS and (g.get("preferredVersion") or g.get("versions"))
        ]
        limit = asyncio.Semaphore(self._concurrency)

        async def fetch(group: str, version: str) -> list[ResourceInfo]:
            async with limit:
                try:
                    return parse_resource_list(
                        group, version, await self._api.get(f"/apis/{group}/{version}")
                    )
                except KubeAPIError as exc:
                    # An unavailable aggregated API must not hide every other group.
                    log.warning("discovery of %s/%s failed: %s", group, version, exc)
                    return []

        results: Sequence[list[ResourceInfo]] = await asyncio.gather(
            *(fetch(g, v) for g, v in preferred)
        )
        return parse_resource_list("", "v1", core) + [i for r in results for i in r]

    async def run(self) -> None:
        """Refresh until the first success (backing off from 1 s to 1 min), then every
        `refresh_interval` (only on misses when it is 0)."""
        backoff = 1.0
        while True:
            await self.refresh()
            if not self.synced.is_set():
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)
                continue
            if self._refresh_interval <= 0:
                return
            await asyncio.sleep(self._refresh_interval)
