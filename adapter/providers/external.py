"""external.metrics.k8s.io: a metric not tied to an object, selected by labels.

Port of the Go adapter's `pkg/external-provider`. One item per sample of the query's instant
vector, with all its labels; a scalar result is one item without labels. A query the rule
cannot build is a 500 "unable to fetch metrics", as in Go; when the rule can never build one
(an empty `metricsQuery`), the message says why (the rule's path, never PromQL).
"""

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from adapter.apimachinery.labels import Selector
from adapter.apimachinery.quantity import decimal_si_quantity
from adapter.discovery.registry import MetricRegistry
from adapter.errors import InternalError, UnknownError, metric_not_found
from adapter.kube.rest_mapper import NAMESPACES
from adapter.naming.errors import NamingError, UnusableQueryError
from adapter.providers.querier import MetricQuerier, query_or_500, route

__all__ = ["ExternalMetricValue", "ExternalMetricsProvider"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ExternalMetricValue:
    metric: str
    labels: dict[str, str] | None  # None for a scalar result
    timestamp: float
    value: str


class ExternalMetricsProvider:
    def __init__(
        self,
        registry: Callable[[], MetricRegistry],
        prometheus: MetricQuerier,
        *,
        servers: Mapping[str, MetricQuerier] | None = None,
    ) -> None:
        """`servers`: the named backends' queriers, by name (see CustomMetricsProvider)."""
        self._registry = registry
        self._prometheus = prometheus
        self._servers = servers

    def list_all_metrics(self) -> list[str]:
        return sorted(self._registry().external)

    async def get_external_metric(
        self, namespace: str, metric: str, metric_selector: Selector
    ) -> list[ExternalMetricValue]:
        found = self._registry().lookup_external(metric)
        if found is None:
            # The Go adapter names `namespaces` only for the default namespace and an empty
            # resource otherwise; we always name it.
            raise metric_not_found(NAMESPACES, metric)
        try:
            query = found.rule.query.build_external(found.series_name, namespace, metric_selector)
        except NamingError as exc:
            log.error("unable to generate a query for the metric %s: %s", metric, exc)
            cause = "unable to fetch metrics"
            if isinstance(exc, UnusableQueryError):
                cause = f"{cause}: {exc}"
            raise InternalError(cause) from None
        querier = route(found.rule.source.prometheus_server, self._prometheus, self._servers)
        result = await query_or_500(querier, query)
        if result.result_type == "scalar":
            sample = result.samples[0]
            return [
                ExternalMetricValue(
                    metric, None, sample.timestamp, decimal_si_quantity(sample.value)
                )
            ]
        if result.result_type != "vector":
            raise UnknownError("encountered an unexpected query result type")
        return [
            ExternalMetricValue(metric, dict(s.labels), s.timestamp, decimal_si_quantity(s.value))
            for s in result.samples
        ]
