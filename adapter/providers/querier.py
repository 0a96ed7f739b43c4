"""What the providers need of a Prometheus client: instant queries."""

from typing import Protocol

from adapter.prometheus.client import QueryResult

__all__ = ["MetricQuerier"]


class MetricQuerier(Protocol):
    async def query(self, query: str, time: float | None = None) -> QueryResult: ...
