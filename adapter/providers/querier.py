"""What the providers need of a Prometheus client (instant queries), and request sharing.

`SingleFlightQuerier` sends identical concurrent queries once: many HPAs (or one HPA's
retries) asking for the same metric of the same objects at the same moment cost Prometheus
one evaluation. A query joins only one that is still in flight, so every answer is as fresh
as the request that asked for it.
"""

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Protocol, TypeVar

from adapter.errors import InternalError
from adapter.prometheus.client import PrometheusError, QueryResult
from adapter.prometheus.config import DEFAULT_SERVER

__all__ = ["MetricQuerier", "SingleFlightQuerier", "object_values", "query_or_500", "route"]

Q = TypeVar("Q")

log = logging.getLogger(__name__)


class MetricQuerier(Protocol):
    async def query(self, query: str, time: float | None = None) -> QueryResult: ...


async def query_or_500(
    querier: MetricQuerier, query: str, time: float | None = None
) -> QueryResult:
    """The query's result; a Prometheus failure is logged and answered with a 500, as in
    the Go adapter."""
    try:
        return await querier.query(query, time)
    except PrometheusError as exc:
        log.error("unable to fetch metrics from prometheus: %s (query %s)", exc, query)
        raise InternalError("unable to fetch metrics") from None


def route(server: str, default: Q, servers: Mapping[str, Q] | None) -> Q:
    """The querier of the backend a rule names (`prometheusServer`, not in the Go adapter):
    `default` for none ("" or DEFAULT_SERVER), else the one `servers` holds under that name.
    A name `servers` lacks (never, for a config that loaded) is a 500."""
    if not server or server == DEFAULT_SERVER:
        return default
    found = servers.get(server) if servers is not None else None
    if found is None:
        log.error("unable to fetch metrics: no Prometheus server named %r is configured", server)
        raise InternalError("unable to fetch metrics")
    return found


class SingleFlightQuerier:
    """A MetricQuerier that shares one in-flight request among identical `(query, time)`
    calls. Errors reach every caller. A caller that is cancelled does not cancel the shared
    request (the others still wait for it); the Prometheus timeout bounds it."""

    def __init__(self, querier: MetricQuerier, on_shared: Callable[[], None] | None = None) -> None:
        self._querier = querier
        self._on_shared = on_shared
        self._in_flight: dict[tuple[str, float | None], asyncio.Task[QueryResult]] = {}

    async def query(self, query: str, time: float | None = None) -> QueryResult:
        key = (query, time)
        task = self._in_flight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._querier.query(query, time))
            self._in_flight[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        elif self._on_shared is not None:
            self._on_shared()
        return await asyncio.shield(task)

    def _finished(self, key: tuple[str, float | None], task: asyncio.Task[QueryResult]) -> None:
        if self._in_flight.get(key) is task:
            del self._in_flight[key]
        if not task.cancelled():
            task.exception()  # retrieved here, so a failure nobody awaited is not reported


def object_values(result: QueryResult, label: str, query: str) -> dict[str, float]:
    """Each object's value, by its `label`, from an instant vector (the last sample of an
    object wins); any other result type is a 500, as in the Go adapter."""
    if result.result_type != "vector":
        log.error("unexpected result type %s for query %s", result.result_type, query)
        raise InternalError("unable to fetch metrics")
    values: dict[str, float] = {}
    for sample in result.samples:
        name = sample.labels.get(label)
        if name:
            values[name] = sample.value
    return values
