"""The adapter's own metrics, served at `/metrics`.

Names: `prometheus_adapter_prometheus_client_request_duration_seconds{path,server}` is the Go
adapter's, so existing dashboards keep working; the rest are ours.
"""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from adapter.discovery.relister import RelistResult
from adapter.prometheus.client import PrometheusError

__all__ = ["AdapterMetrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class AdapterMetrics:
    def __init__(self, prometheus_url: str = "") -> None:
        self.registry = CollectorRegistry()
        self._server = prometheus_url
        self.requests = Counter(
            "prometheus_adapter_requests_total",
            "Requests served, by API group (or endpoint kind) and HTTP status code.",
            ["group", "code"],
            registry=self.registry,
        )
        self.request_duration = Histogram(
            "prometheus_adapter_request_duration_seconds",
            "Time to serve a request, by API group (or endpoint kind).",
            ["group"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.prometheus_duration = Histogram(
            "prometheus_adapter_prometheus_client_request_duration_seconds",
            "Prometheus client request latency, by endpoint path.",
            ["path", "server"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.prometheus_errors = Counter(
            "prometheus_adapter_prometheus_client_errors_total",
            "Failed Prometheus requests, by endpoint path and error type.",
            ["path", "type"],
            registry=self.registry,
        )
        self.shared_queries = Counter(
            "prometheus_adapter_prometheus_queries_shared_total",
            "Queries answered by joining an identical query already in flight to Prometheus.",
            registry=self.registry,
        )
        self.relists = Counter(
            "prometheus_adapter_relist_total",
            "Metric discovery runs, by result (success, or failure when a series query failed).",
            ["result"],
            registry=self.registry,
        )
        self.relist_duration = Histogram(
            "prometheus_adapter_relist_duration_seconds",
            "Duration of a metric discovery run.",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.relist_failed_queries = Gauge(
            "prometheus_adapter_relist_failed_queries",
            "Series queries that failed in the last discovery run.",
            registry=self.registry,
        )
        self.last_successful_relist = Gauge(
            "prometheus_adapter_relist_last_success_timestamp_seconds",
            "Time of the last discovery run in which every series query succeeded.",
            registry=self.registry,
        )
        self.event_loop_lag = Histogram(
            "prometheus_adapter_event_loop_lag_seconds",
            "How late a timer probe run every 20ms fired: the time the event loop was blocked.",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.registered_metrics = Gauge(
            "prometheus_adapter_registered_metrics",
            "Metrics currently in the registry, by API.",
            ["api"],
            registry=self.registry,
        )

    def observe_prometheus_request(
        self,
        endpoint: str,
        method: str,
        params: object,
        status: int | None,
        seconds: float,
        error: PrometheusError | None,
    ) -> None:
        self.prometheus_duration.labels(endpoint, self._server).observe(seconds)
        if error is not None:
            self.prometheus_errors.labels(endpoint, error.error_type).inc()

    def observe_relist(self, result: RelistResult) -> None:
        self.relists.labels("success" if result.ok else "failure").inc()
        self.relist_duration.observe(result.seconds)
        self.relist_failed_queries.set(len(result.failures))
        if result.ok:
            self.last_successful_relist.set_to_current_time()
        self.registered_metrics.labels("custom").set(len(result.registry.custom))
        self.registered_metrics.labels("external").set(len(result.registry.external))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
