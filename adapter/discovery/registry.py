"""Which metrics exist: an immutable snapshot built from the series Prometheus lists.

Port of the Go adapter's series registries (`pkg/custom-provider/series_registry.go`,
`pkg/external-provider/external_series_registry.go`). Each rule turns the series its
`seriesQuery` found into metrics: the filters keep some, `name` names them, `resources`
associates them with Kubernetes resources. Collisions resolve as in Go: the last rule (then the
last series) wins. A relist builds a new snapshot and swaps it in whole.
"""

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from adapter.kube.rest_mapper import GroupResource
from adapter.naming.errors import NamingError
from adapter.naming.rules import MetricRule
from adapter.prometheus.config import DEFAULT_SERVER

__all__ = [
    "CustomMetricInfo",
    "MetricRegistry",
    "SeriesInfo",
    "SeriesKey",
    "SeriesListings",
    "SeriesShape",
    "build_registry",
    "key_query",
    "key_server",
    "series_key",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SeriesShape:
    """What discovery needs of a series: its name and its label names (not values), so the
    many series that differ only in label values collapse into one."""

    name: str
    labels: frozenset[str]

    @classmethod
    def from_labels(cls, labels: Mapping[str, str]) -> "SeriesShape":
        return cls(labels.get("__name__", ""), frozenset(k for k in labels if k != "__name__"))


@dataclass(frozen=True, slots=True)
class CustomMetricInfo:
    """custom-metrics-apiserver's CustomMetricInfo: a metric on a resource, and its scope."""

    group_resource: GroupResource
    namespaced: bool
    metric: str

    def __str__(self) -> str:
        return f"{self.group_resource}/{self.metric}"


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    """Where a metric comes from: the Prometheus series name and the rule that named it."""

    series_name: str
    rule: MetricRule


@dataclass(frozen=True, slots=True)
class MetricRegistry:
    custom: Mapping[CustomMetricInfo, SeriesInfo] = field(default_factory=dict)
    external: Mapping[str, SeriesInfo] = field(default_factory=dict)
    _external_lower: Mapping[str, SeriesInfo] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lower = {name.lower(): info for name, info in self.external.items()}
        object.__setattr__(self, "_external_lower", lower)

    def lookup_custom(self, info: CustomMetricInfo) -> SeriesInfo | None:
        return self.custom.get(info)

    def lookup_external(self, metric: str) -> SeriesInfo | None:
        """client-go lower-cases resource names in URLs, so an external metric with capitals
        arrives lower-cased; an exact match wins, then a case-insensitive one."""
        found = self.external.get(metric)
        return found if found is not None else self._external_lower.get(metric.lower())

    def __len__(self) -> int:
        return len(self.custom) + len(self.external)


SeriesKey = str | tuple[str, str]
"""What one series listing is kept under: the seriesQuery for the command-line backend (as
before named backends existed), (backend name, seriesQuery) for a `prometheusServers` one."""


SeriesListings = Mapping[str, Iterable[SeriesShape]] | Mapping[SeriesKey, Iterable[SeriesShape]]
"""The series each listing found, by series key (plain seriesQueries without named backends)."""


def series_key(rule: MetricRule) -> SeriesKey:
    """Where the series a rule names are found: its seriesQuery, on its backend."""
    server = rule.prometheus_server
    return rule.series_query if server == DEFAULT_SERVER else (server, rule.series_query)


def key_server(key: SeriesKey) -> str:
    """The backend a series key is listed from."""
    return key[0] if isinstance(key, tuple) else DEFAULT_SERVER


def key_query(key: SeriesKey) -> str:
    """The seriesQuery of a series key."""
    return key[1] if isinstance(key, tuple) else key


def _named_series(
    rule: MetricRule, shapes: Iterable[SeriesShape]
) -> Iterator[tuple[SeriesShape, str]]:
    """The series a rule keeps, with the metric name it gives each."""
    for shape in shapes:
        if not rule.keeps(shape.name):
            continue
        try:
            yield shape, rule.namer.metric_name_for_series(shape.name)
        except NamingError as exc:
            log.warning("%s: unable to name series, skipping: %s", rule.path, exc)


def _custom_metrics(
    rule: MetricRule, shapes: Iterable[SeriesShape], out: dict[CustomMetricInfo, SeriesInfo]
) -> None:
    for shape, metric in _named_series(rule, shapes):
        # Sorted so that the result does not depend on set iteration order.
        for resource in rule.converter.resources_for_series(sorted(shape.labels)):
            info = CustomMetricInfo(resource, rule.converter.is_namespaced(resource), metric)
            out[info] = SeriesInfo(shape.name, rule)


def _external_metrics(
    rule: MetricRule, shapes: Iterable[SeriesShape], out: dict[str, SeriesInfo]
) -> None:
    for shape, metric in _named_series(rule, shapes):
        out[metric] = SeriesInfo(shape.name, rule)


def build_registry(
    custom_rules: Iterable[MetricRule],
    external_rules: Iterable[MetricRule],
    series_by_query: SeriesListings,
) -> MetricRegistry:
    """Build a snapshot from the series each distinct seriesQuery returned (keyed by
    `series_key`: a rule on a named backend takes the series of its own backend). Series are
    taken in sorted order, so the winner of a collision does not depend on Prometheus' order;
    across backends too, the last rule wins."""
    sorted_series: dict[SeriesKey, list[SeriesShape]] = {
        query: sorted(shapes, key=lambda s: (s.name, sorted(s.labels)))
        for query, shapes in series_by_query.items()
    }
    custom: dict[CustomMetricInfo, SeriesInfo] = {}
    for rule in custom_rules:
        _custom_metrics(rule, sorted_series.get(series_key(rule), ()), custom)
    external: dict[str, SeriesInfo] = {}
    for rule in external_rules:
        _external_metrics(rule, sorted_series.get(series_key(rule), ()), external)
    return MetricRegistry(custom=custom, external=external)
