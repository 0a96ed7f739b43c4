"""Discovery from metric names and label names, and the AUTO check against a series listing."""

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from adapter.discovery.label_names import selector_for_metric, shapes_agree
from adapter.discovery.registry import (
    CustomMetricInfo,
    MetricRegistry,
    SeriesShape,
    build_registry,
)
from adapter.discovery.relister import AUTO, LABEL_NAMES, SERIES, Relister
from adapter.naming.rules import load_rules
from adapter.prometheus.errors import PrometheusError

SERIES_DATA = [
    {"__name__": "container_cpu_usage_seconds_total", "namespace": "a", "pod": "p1", "container": "c"},
    {"__name__": "container_cpu_usage_seconds_total", "namespace": "a", "pod": "p2"},
    {"__name__": "container_memory_working_set_bytes", "namespace": "b", "pod": "p3"},
    {"__name__": "http_requests_total", "namespace": "a", "service": "s", "pod": "p1"},
    {"__name__": "http_requests_total", "namespace": "b", "ingress": "i"},
    {"__name__": "node_load1", "node": "n"},
]  # fmt: skip
CONFIG = """
rules:
- seriesQuery: '{__name__=~"^container_.*",namespace!=""}'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'
- seriesQuery: '{namespace!="",__name__!~"^container_.*"}'
  resources: {template: "<<.Resource>>"}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'
- seriesQuery: 'node_load1'
  resources: {overrides: {node: {resource: node}}}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'
"""
_MATCHER = re.compile(r'(__name__|\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')


def matches(selector: str, series: dict[str, str]) -> bool:
    """Enough of PromQL selectors for the queries above."""
    name, _, rest = selector.partition("{")
    if name.strip() and series["__name__"] != name.strip():
        return False
    for label, op, value in _MATCHER.findall(rest):
        actual = series.get(label, "")
        ok = {
            "=": actual == value,
            "!=": actual != value,
            "=~": re.fullmatch(value, actual) is not None,
            "!~": re.fullmatch(value, actual) is None,
        }[op]
        if not ok:
            return False
    return True


class FakePrometheus:
    """Series, metric names and label names; `honours_match=False` answers the label
    endpoints as a backend that ignores match[] does."""

    def __init__(self, honours_match: bool = True) -> None:
        self.honours_match = honours_match
        self.calls: list[str] = []

    def _selected(self, selectors: Sequence[str]) -> list[dict[str, str]]:
        if not self.honours_match:
            return SERIES_DATA
        return [s for s in SERIES_DATA if any(matches(m, s) for m in selectors)]

    async def stream_series(
        self,
        matches_: Sequence[str],
        start: float | None = None,
        end: float | None = None,
        *,
        sink: Callable[[list[dict[str, str]]], None],
    ) -> int:
        self.calls.append("series")
        found = [s for s in SERIES_DATA if any(matches(m, s) for m in matches_)]
        sink(found)
        return len(found)

    async def metric_names(
        self, matches_: Sequence[str] = (), start: float | None = None, end: float | None = None
    ) -> list[str]:
        self.calls.append("names")
        return sorted({s["__name__"] for s in self._selected(matches_)})

    async def labels(
        self, matches_: Sequence[str] = (), start: float | None = None, end: float | None = None
    ) -> list[str]:
        self.calls.append("labels")
        return sorted({label for s in self._selected(matches_) for label in s})


@pytest.mark.parametrize(
    ("query", "narrowed"),
    [
        ('{namespace!=""}', '{namespace!="",__name__="m"}'),
        ('{namespace!="", }', '{namespace!="",__name__="m"}'),
        ("{}", '{__name__="m"}'),
        ('up{job="a"}', 'up{job="a"}'),
        ("up", "up"),
        ('{__name__=~"a|b",x="}"}', '{__name__=~"a|b",x="}",__name__="m"}'),
        ("rate(x[5m])", None),
        ("", None),
    ],
)
def test_selector_for_metric(query: str, narrowed: str | None) -> None:
    assert selector_for_metric(query, "m") == narrowed


def test_shapes_agree_compares_label_names_per_metric() -> None:
    series = [SeriesShape("m", frozenset({"a"})), SeriesShape("m", frozenset({"b"}))]
    assert shapes_agree(series, [SeriesShape("m", frozenset({"a", "b"}))])
    assert not shapes_agree(series, [SeriesShape("m", frozenset({"a", "b", "c"}))])
    assert not shapes_agree(series, [*series, SeriesShape("n", frozenset({"a"}))])


def summary(registry: MetricRegistry) -> dict[CustomMetricInfo, tuple[str, str]]:
    """The registry without rule objects (each relister here compiles its own)."""
    return {info: (s.series_name, s.rule.path) for info, s in registry.custom.items()}


def relister(tmp_path: Path, fake: FakePrometheus, mode: str) -> Relister:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    compiled = load_rules(path)
    return Relister(fake, compiled.rules, compiled.external_rules, 60, 600, mode=mode)


@pytest.mark.parametrize("mode", [LABEL_NAMES, AUTO])
async def test_label_names_give_the_series_registry(tmp_path: Path, mode: str) -> None:
    by_series = relister(tmp_path, FakePrometheus(), SERIES)
    await by_series.relist_once()
    fake = FakePrometheus()
    by_labels = relister(tmp_path, fake, mode)
    await by_labels.relist_once()
    assert len(by_series.registry.custom) == 9
    assert summary(by_labels.registry) == summary(by_series.registry)
    fake.calls.clear()
    await by_labels.relist_once()
    assert "series" not in fake.calls and "names" in fake.calls


async def test_auto_falls_back_to_series_when_label_endpoints_ignore_match(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    expected = relister(tmp_path, FakePrometheus(), SERIES)
    await expected.relist_once()
    fake = FakePrometheus(honours_match=False)
    auto = relister(tmp_path, fake, AUTO)
    await auto.relist_once()
    assert not auto.uses_label_names
    assert summary(auto.registry) == summary(expected.registry)
    assert "differs from the series listing" in caplog.text
    fake.calls.clear()
    await auto.relist_once()
    assert set(fake.calls) == {"series"}
    assert summary(auto.registry) == summary(expected.registry)


def test_registry_depends_only_on_the_union_of_label_names_per_metric(tmp_path: Path) -> None:
    """Why label names suffice: folding every series of a metric into one shape with the union
    of their label names builds the same registry."""
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    compiled = load_rules(path)
    shapes = [SeriesShape.from_labels(s) for s in SERIES_DATA]
    union: dict[str, frozenset[str]] = {}
    for shape in shapes:
        union[shape.name] = union.get(shape.name, frozenset()) | shape.labels
    folded = [SeriesShape(name, labels) for name, labels in union.items()]
    queries = {rule.series_query for rule in compiled.rules}
    per_series = build_registry(compiled.rules, (), dict.fromkeys(queries, shapes))
    per_metric = build_registry(compiled.rules, (), dict.fromkeys(queries, folded))
    assert per_series == per_metric and len(per_series.custom) > 0


async def test_auto_keeps_label_names_when_series_cannot_be_listed(tmp_path: Path) -> None:
    class SeriesTooMany(FakePrometheus):
        async def stream_series(self, *args: object, **kwargs: object) -> int:
            raise TimeoutError("no response within 10s")

    auto = relister(tmp_path, SeriesTooMany(), AUTO)
    for _ in range(3):
        result = await auto.relist_once()
        assert result.ok and auto.uses_label_names and len(auto.registry.custom) == 9
    assert auto._label_names_agree is True  # no more checks


async def test_auto_lists_series_when_the_label_endpoints_fail(tmp_path: Path) -> None:
    class NoLabelValues(FakePrometheus):
        async def metric_names(self, *args: object, **kwargs: object) -> list[str]:
            self.calls.append("names")
            raise PrometheusError("405 Method Not Allowed", error_type="bad_response", status=405)

    expected = relister(tmp_path, FakePrometheus(), SERIES)
    await expected.relist_once()
    fake = NoLabelValues()
    auto = relister(tmp_path, fake, AUTO)
    assert (await auto.relist_once()).ok
    assert summary(auto.registry) == summary(expected.registry)
    assert not auto.uses_label_names
    fake.calls.clear()
    await auto.relist_once()
    assert set(fake.calls) == {"series"}
    with pytest.raises(PrometheusError):  # label-names mode has no fallback
        await relister(tmp_path, NoLabelValues(), LABEL_NAMES)._list("node_load1", 0)
