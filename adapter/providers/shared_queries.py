"""Namespace-wide queries shared by requests (`--namespace-query-ttl`; not in the Go adapter).

With one HPA per workload, a cluster with 10,000 HPAs makes the adapter send ~667 queries per
second, one per HPA, each for a few pods. In this mode a request for a metric of some objects
of a namespace is answered from one query over every object of the namespace (the rule's
template rendered with `<label>!=""` instead of the object names), kept for `ttl` seconds and
filtered per request. Prometheus load then grows with distinct (metric, namespace) pairs, not
with HPAs. Concurrent misses share one query. Failures are not kept.

Values are up to `ttl` old, so `ttl` should stay well under the HPA sync period (15 s). Only
rules whose query computes each object from its own series may be shared; the custom provider
checks that with `adapter.providers.per_object` and queries per request otherwise.
"""

import asyncio
import time
from collections.abc import Callable, Mapping

from adapter.providers.per_object import shared_query_problem
from adapter.providers.querier import MetricQuerier, object_values, query_or_500

__all__ = ["NamespaceQueries", "sharing_problem"]

_SWEEP_SIZE = 1024  # entries before expired ones are dropped on insert


def sharing_problem(template_source: str, namespace_query: str, label: str) -> str | None:
    """Why a rule's namespace-wide query (`namespace_query`, rendered with `<label>!=""`)
    cannot stand in for its per-object queries, or None when it can."""
    if "LabelValuesByName" in template_source:
        return "it uses .LabelValuesByName, which names the objects outside the matchers"
    return shared_query_problem(namespace_query, f'{label}!=""', label)


class NamespaceQueries:
    def __init__(
        self, querier: MetricQuerier, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._querier = querier
        self._ttl = ttl
        self._clock = clock
        # (query, object label) -> (expiry, the query's values by object name)
        self._entries: dict[tuple[str, str], tuple[float, asyncio.Task[dict[str, float]]]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    async def values(self, query: str, label: str) -> Mapping[str, float]:
        """Each object's value (by its `label`) from `query`, at most `ttl` seconds old."""
        key = (query, label)
        now = self._clock()
        entry = self._entries.get(key)
        if entry is None or (entry[1].done() and entry[0] <= now):
            if len(self._entries) >= _SWEEP_SIZE:
                self._sweep(now)
            task = asyncio.ensure_future(self._fetch(query, label))
            entry = (now + self._ttl, task)
            self._entries[key] = entry
            task.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(entry[1])

    async def _fetch(self, query: str, label: str) -> dict[str, float]:
        return object_values(await query_or_500(self._querier, query), label, query)

    def _finished(self, key: tuple[str, str], task: asyncio.Task[dict[str, float]]) -> None:
        if task.cancelled() or task.exception() is not None:
            entry = self._entries.get(key)
            if entry is not None and entry[1] is task:
                del self._entries[key]  # the next request asks again

    def _sweep(self, now: float) -> None:
        for key, (expiry, task) in list(self._entries.items()):
            if task.done() and expiry <= now:
                del self._entries[key]
