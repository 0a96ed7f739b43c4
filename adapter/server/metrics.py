"""The adapter's own metrics, served at `/metrics`.

Names: `prometheus_adapter_prometheus_client_request_duration_seconds{path,server}` is the Go
adapter's, so existing dashboards keep working; the rest are ours.

Backends: every Prometheus backend (the command line's, named `default`, and each of
`prometheusServers`) feeds the families that existed before named backends did (the Go
histogram with its `server` URL, the errors counter without a backend label), so that their
sums stay what dashboards expect, and the `prometheus_adapter_backend_*` families, labelled
`backend` with the backend's name. A backend that a reload removes is removed from those.
"""

import contextlib
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from adapter.discovery.relister import RelistResult
from adapter.prometheus.client import PrometheusError
from adapter.prometheus.config import DEFAULT_SERVER

__all__ = ["AdapterMetrics", "BackendObserver"]

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
        self.backend_requests = Counter(
            "prometheus_adapter_backend_requests_total",
            "Requests to each Prometheus backend, by endpoint path and HTTP status code "
            '("none" when no answer came).',
            ["backend", "path", "code"],
            registry=self.registry,
        )
        self.backend_duration = Histogram(
            "prometheus_adapter_backend_request_duration_seconds",
            "Latency of requests to each Prometheus backend, by endpoint path.",
            ["backend", "path"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.backend_errors = Counter(
            "prometheus_adapter_backend_errors_total",
            "Failed requests to each Prometheus backend, by endpoint path and error type.",
            ["backend", "path", "type"],
            registry=self.registry,
        )
        self.backend_relist_failed_queries = Gauge(
            "prometheus_adapter_backend_relist_failed_queries",
            "Series queries to each Prometheus backend that failed in the last discovery run.",
            ["backend"],
            registry=self.registry,
        )
        self.backend_last_successful_relist = Gauge(
            "prometheus_adapter_backend_relist_last_success_timestamp_seconds",
            "Time of the last discovery run in which every series query to the backend succeeded.",
            ["backend"],
            registry=self.registry,
        )
        # Backends a reload removed: their clients' last requests count in the shared
        # families only.
        self.retired_backends: set[str] = set()
        self._default_observer = BackendObserver(self, DEFAULT_SERVER, prometheus_url)

    def backend_observer(self, backend: str, url: str) -> "BackendObserver":
        """The request observer of one backend's client; `url` as shown (no credentials)."""
        if backend == DEFAULT_SERVER:
            return self._default_observer
        self.retired_backends.discard(backend)
        return BackendObserver(self, backend, url)

    def forget_backend(self, backend: str) -> None:
        """Remove a backend's own series (a reload removed it). The shared families keep
        what it counted: their sums must not go back."""
        self.retired_backends.add(backend)
        families: list[tuple[Counter | Gauge | Histogram, tuple[str, ...]]] = [
            (self.backend_requests, ("backend", "path", "code")),
            (self.backend_duration, ("backend", "path")),
            (self.backend_errors, ("backend", "path", "type")),
            (self.backend_relist_failed_queries, ("backend",)),
            (self.backend_last_successful_relist, ("backend",)),
        ]
        for family, names in families:
            children = {
                tuple(sample.labels[name] for name in names)
                for metric in family.collect()
                for sample in metric.samples
                if sample.labels.get("backend") == backend
            }
            for labels in children:
                with contextlib.suppress(KeyError):
                    family.remove(*labels)

    def observe_prometheus_request(
        self,
        endpoint: str,
        method: str,
        params: object,
        status: int | None,
        seconds: float,
        error: PrometheusError | None,
    ) -> None:
        """The command-line backend's requests."""
        self._default_observer(endpoint, method, params, status, seconds, error)

    def observe_relist(self, result: RelistResult) -> None:
        self.relists.labels("success" if result.ok else "failure").inc()
        self.relist_duration.observe(result.seconds)
        self.relist_failed_queries.set(len(result.failures))
        if result.ok:
            self.last_successful_relist.set_to_current_time()
        for backend in result.servers:
            failed = result.failures_of(backend)
            self.backend_relist_failed_queries.labels(backend).set(failed)
            if not failed:
                self.backend_last_successful_relist.labels(backend).set_to_current_time()
        self.registered_metrics.labels("custom").set(len(result.registry.custom))
        self.registered_metrics.labels("external").set(len(result.registry.external))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class BackendObserver:
    """Observes one backend's requests into the shared families and its own; the labelled
    children are looked up once and kept, so a request costs a few dictionary lookups. Once
    a reload has removed the backend, only the shared families count."""

    __slots__ = ("_durations", "_errors", "_metrics", "_name", "_requests", "_url")

    def __init__(self, metrics: AdapterMetrics, name: str, url: str) -> None:
        self._metrics = metrics
        self._name = name
        self._url = url
        # endpoint -> (the Go histogram's child, the backend histogram's child)
        self._durations: dict[str, tuple[Histogram, Histogram]] = {}
        self._requests: dict[tuple[str, int | None], Counter] = {}
        self._errors: dict[tuple[str, str], tuple[Counter, Counter]] = {}

    def __call__(
        self,
        endpoint: str,
        method: str,
        params: Sequence[tuple[str, str]] | object,
        status: int | None,
        seconds: float,
        error: PrometheusError | None,
    ) -> None:
        durations = self._durations.get(endpoint)
        if durations is None:
            m = self._metrics
            durations = self._durations[endpoint] = (
                m.prometheus_duration.labels(endpoint, self._url),
                m.backend_duration.labels(self._name, endpoint),
            )
        durations[0].observe(seconds)
        errors = None if error is None else self._error_counters(endpoint, error.error_type)
        if errors is not None:
            errors[0].inc()
        if self._name in self._metrics.retired_backends:
            return
        durations[1].observe(seconds)
        if errors is not None:
            errors[1].inc()
        requests = self._requests.get((endpoint, status))
        if requests is None:
            code = "none" if status is None else str(status)
            requests = self._metrics.backend_requests.labels(self._name, endpoint, code)
            self._requests[(endpoint, status)] = requests
        requests.inc()

    def _error_counters(self, endpoint: str, error_type: str) -> tuple[Counter, Counter]:
        errors = self._errors.get((endpoint, error_type))
        if errors is None:
            m = self._metrics
            errors = self._errors[(endpoint, error_type)] = (
                m.prometheus_errors.labels(endpoint, error_type),
                m.backend_errors.labels(self._name, endpoint, error_type),
            )
        return errors
