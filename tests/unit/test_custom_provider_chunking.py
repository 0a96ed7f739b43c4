"""CustomMetricsProvider splitting long `*` requests into chunk queries and merging them, with
an in-memory Prometheus that answers from the object matcher of each query."""

import asyncio
import logging
import re
from pathlib import Path

import pytest

from adapter.apimachinery.labels import Selector, parse_selector
from adapter.discovery.registry import MetricRegistry, SeriesInfo, SeriesShape, build_registry
from adapter.errors import InternalError
from adapter.golang.quote import go_quote
from adapter.kube.rest_mapper import BUILTIN_RESOURCES, PODS, GroupResource, StaticRESTMapper
from adapter.naming.rules import load_rules
from adapter.prometheus.client import PrometheusError, QueryResult, Sample
from adapter.providers.custom import CustomMetricsProvider

NOW = 1_700_000_000.0
CONFIG = """
rules:
- seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  name: {matches: "^(.*)_total$", as: "${1}_per_second"}
  metricsQuery: 'sum(irate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)'
- seriesQuery: 'memory_usage_bytes{namespace!="",pod!=""}'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  metricsQuery: 'SUM BY(namespace,<<.GroupBy>>) (<<.Series>>{<<.LabelMatchers>>})'
- seriesQuery: 'cpu_seconds{namespace!="",pod!=""}'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  metricsQuery: '<<.Series>>{<<.LabelMatchers>>} / scalar(count(<<.Series>>{<<.LabelMatchers>>}))'
"""
_MATCHER = re.compile(r'pod=~?("(?:[^"\\]|\\.)*")')
EVERYTHING = Selector(())


def pod_value(name: str) -> float:
    return float(name.rsplit("-", 1)[-1]) / 4


class FakePrometheus:
    """Answers one sample per pod named in the query's pod matcher (and one stray pod)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[tuple[str, float | None]] = []
        self.delay = delay
        self.in_flight = 0
        self.max_in_flight = 0
        self.fail_on: str | None = None

    async def query(self, query: str, time: float | None = None) -> QueryResult:
        self.calls.append((query, time))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            if self.fail_on is not None and self.fail_on in query:
                raise PrometheusError("boom", error_type="execution")
        finally:
            self.in_flight -= 1
        match = _MATCHER.search(query)
        assert match is not None, query
        names = match.group(1)[1:-1].split("|")
        samples = [Sample({"namespace": "ns-0", "pod": n}, pod_value(n), NOW) for n in names]
        # A series the regex matched besides the requested objects (say `pod-1.` as a regex).
        samples.append(Sample({"namespace": "ns-0", "pod": "stray-7"}, 99.0, NOW))
        return QueryResult("vector", tuple(samples))


class FakeLister:
    def __init__(self, names: list[str]) -> None:
        self.names = names

    async def list_names(
        self, resource: GroupResource, namespace: str, selector: Selector, source: SeriesInfo
    ) -> list[str]:
        return list(self.names)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> MetricRegistry:
    path: Path = tmp_path_factory.mktemp("config") / "config.yaml"
    path.write_text(CONFIG)
    compiled = load_rules(path)
    labels = frozenset({"namespace", "pod"})
    return build_registry(
        compiled.rules,
        compiled.external_rules,
        {
            rule.series_query: [SeriesShape(name, labels)]
            for rule, name in zip(
                compiled.rules,
                ("http_requests_total", "memory_usage_bytes", "cpu_seconds"),
                strict=True,
            )
        },
    )


def provider(
    registry: MetricRegistry, fake: FakePrometheus, names: list[str], limit: int
) -> CustomMetricsProvider:
    return CustomMetricsProvider(
        lambda: registry,
        fake,
        FakeLister(names),
        StaticRESTMapper(BUILTIN_RESOURCES),
        clock=lambda: NOW,
        max_matcher_length=limit,
    )


async def values(
    registry: MetricRegistry,
    names: list[str],
    limit: int,
    metric: str = "http_requests_per_second",
    fake: FakePrometheus | None = None,
    metric_selector: Selector = EVERYTHING,
) -> list[tuple[str, str]]:
    fake = fake or FakePrometheus()
    found = await provider(registry, fake, names, limit).get_metric_by_selector(
        PODS, "ns-0", EVERYTHING, metric, metric_selector
    )
    return [(v.described_object.name, v.value) for v in found]


NAMES = [f"pod-{i}" for i in range(300)]


async def test_chunks_hold_only_their_names_and_merge_to_the_single_result(
    registry: MetricRegistry,
) -> None:
    single, chunked = FakePrometheus(), FakePrometheus()
    expected = await values(registry, NAMES, 0, fake=single)
    assert len(single.calls) == 1 and single.calls[0][1] is None  # unchanged: one query, "now"
    assert await values(registry, NAMES, 200, fake=chunked) == expected
    assert len(expected) == 300 and expected[5] == ("pod-5", "1250m")
    assert len(chunked.calls) > 10
    seen: list[str] = []
    for query, time in chunked.calls:
        assert time == NOW  # every chunk evaluated at one instant
        match = _MATCHER.search(query)
        assert match is not None
        assert len(match.group(1)) <= 200
        seen.extend(match.group(1)[1:-1].split("|"))
        template = query.replace(match.group(1), '"X"').replace('pod=~"X"', 'pod="X"')
        assert template == (
            'sum(irate(http_requests_total{namespace="ns-0",pod="X"}[1m])) by (pod)'
        )
    assert sorted(seen) == sorted(NAMES)  # each name in exactly one chunk


async def test_short_list_is_one_query(registry: MetricRegistry) -> None:
    fake = FakePrometheus()
    names = NAMES[:10]
    assert len(go_quote("|".join(names))) < 4096
    await values(registry, names, 4096, fake=fake)
    assert [time for _, time in fake.calls] == [None]


async def test_metric_selector_and_prefix_by_clause(registry: MetricRegistry) -> None:
    fake = FakePrometheus()
    selector = parse_selector("job=web")
    got = await values(registry, NAMES, 300, "memory_usage_bytes", fake, selector)
    assert len(got) == 300
    assert len(fake.calls) > 1
    assert all(
        q.startswith('SUM BY(namespace,pod) (memory_usage_bytes{job="web",namespace="ns-0",pod=~"')
        for q, _ in fake.calls
    )


async def test_concurrency_is_bounded(registry: MetricRegistry) -> None:
    fake = FakePrometheus(delay=0.01)
    await values(registry, NAMES, 100, fake=fake)
    assert len(fake.calls) > 8
    assert fake.max_in_flight == 4


async def test_a_failing_chunk_fails_the_request(
    registry: MetricRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakePrometheus(delay=0.01)
    fake.fail_on = "pod-150|"
    with pytest.raises(InternalError, match="unable to fetch metrics"):
        await values(registry, NAMES, 200, fake=fake)
    assert "unable to fetch metrics from prometheus: execution: boom" in caplog.text
    await asyncio.sleep(0.05)
    assert fake.in_flight == 0  # the other chunks were cancelled or finished


async def test_template_not_aggregating_by_object_is_not_split(
    registry: MetricRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="adapter.providers.custom")
    fake = FakePrometheus()
    p = provider(registry, fake, NAMES, 200)
    for _ in range(2):
        found = await p.get_metric_by_selector(PODS, "ns-0", EVERYTHING, "cpu_seconds", EVERYTHING)
        assert len(found) == 300
    assert len(fake.calls) == 2  # one whole query per request
    assert all(f'pod=~"{"|".join(NAMES)}"' in q and t is None for q, t in fake.calls)
    warnings = [r for r in caplog.records if "instead of" in r.getMessage()]
    assert len(warnings) == 1  # once per rule


async def test_single_object_request_is_unchanged(registry: MetricRegistry) -> None:
    fake = FakePrometheus()
    value = await provider(registry, fake, [], 10).get_metric_by_name(
        PODS, "ns-0", "pod-12345", "http_requests_per_second", EVERYTHING
    )
    assert value.value == "3086250m"
    assert fake.calls == [
        ('sum(irate(http_requests_total{namespace="ns-0",pod="pod-12345"}[1m])) by (pod)', None)
    ]
