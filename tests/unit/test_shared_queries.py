"""Sharing work across requests: single-flight queries and namespace-wide shared queries."""

import asyncio
import logging
import re
from pathlib import Path

import pytest

from adapter.apimachinery.labels import Selector
from adapter.discovery.registry import MetricRegistry, SeriesShape, build_registry
from adapter.errors import InternalError
from adapter.kube.rest_mapper import BUILTIN_RESOURCES, PODS, StaticRESTMapper
from adapter.naming.rules import load_rules
from adapter.prometheus.client import PrometheusError, QueryResult, Sample
from adapter.providers.custom import CustomMetricsProvider
from adapter.providers.querier import SingleFlightQuerier
from adapter.providers.shared_queries import NamespaceQueries

NOW = 1_700_000_000.0
EVERYTHING = Selector(())
PODS_IN_NS = {f"pod-{i}": float(i) for i in range(6)}
CONFIG = """
rules:
- seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  name: {matches: "^(.*)_total$", as: "${1}_per_second"}
  metricsQuery: 'sum(irate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)'
- seriesQuery: 'cpu_seconds{namespace!="",pod!=""}'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  metricsQuery: '<<.Series>>{<<.LabelMatchers>>} / scalar(count(<<.Series>>{<<.LabelMatchers>>}))'
- seriesQuery: 'named_only{namespace!="",pod!=""}'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  # Renders with object names; without them (namespace-wide) it reaches a bad field.
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)<<if not .LabelValuesByName.pod>><<.Nope>><<end>>'
"""
Q = 'x{pod="pod-1"}'
_POD_MATCHER = re.compile(r'pod(=~|=|!=)"([^"]*)"')


class FakePrometheus:
    """Answers one sample per pod of the namespace that the query's pod matcher selects;
    `release` holds every answer until set."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float | None]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.fail = False

    async def query(self, query: str, time: float | None = None) -> QueryResult:
        self.calls.append((query, time))
        await self.release.wait()
        if self.fail:
            raise PrometheusError("boom", error_type="execution")
        match = _POD_MATCHER.search(query)
        assert match is not None, query
        op, value = match.groups()
        wanted = set(PODS_IN_NS) if op == "!=" else set(value.split("|"))
        samples = tuple(
            Sample({"pod": name}, PODS_IN_NS[name], NOW)
            for name in sorted(wanted & set(PODS_IN_NS))
        )
        return QueryResult("vector", samples)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


# --- single flight -----------------------------------------------------------------------------


async def test_identical_concurrent_queries_are_sent_once() -> None:
    fake = FakePrometheus()
    fake.release.clear()
    shared: list[int] = []
    querier = SingleFlightQuerier(fake, lambda: shared.append(1))
    waiting = [asyncio.create_task(querier.query(Q)) for _ in range(5)]
    other = asyncio.create_task(querier.query(Q, 1.0))  # another time: its own query
    await settle()
    fake.release.set()
    results = await asyncio.gather(*waiting, other)
    assert len(fake.calls) == 2 and len(shared) == 4
    assert all(r is results[0] for r in results[:5])
    await querier.query(Q)  # nothing in flight any more: asks again
    assert len(fake.calls) == 3


async def test_single_flight_failure_reaches_every_caller_and_is_not_kept() -> None:
    fake = FakePrometheus()
    fake.release.clear()
    fake.fail = True
    querier = SingleFlightQuerier(fake)
    waiting = [asyncio.create_task(querier.query(Q)) for _ in range(3)]
    await settle()
    fake.release.set()
    outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(o, PrometheusError) for o in outcomes)
    fake.fail = False
    await querier.query('x{pod="pod-1"}')
    assert len(fake.calls) == 2


async def test_a_cancelled_caller_does_not_cancel_the_shared_query() -> None:
    fake = FakePrometheus()
    fake.release.clear()
    querier = SingleFlightQuerier(fake)
    first = asyncio.create_task(querier.query('x{pod="pod-1"}'))
    second = asyncio.create_task(querier.query('x{pod="pod-1"}'))
    await settle()
    first.cancel()
    await settle()
    fake.release.set()
    assert (await second).samples[0].labels == {"pod": "pod-1"}
    assert first.cancelled() and len(fake.calls) == 1


# --- namespace-wide queries ------------------------------------------------------------------


async def test_namespace_queries_are_kept_for_the_ttl_and_failures_are_not() -> None:
    fake = FakePrometheus()
    now = [100.0]
    queries = NamespaceQueries(fake, 5.0, clock=lambda: now[0])
    query = 'x{pod!=""}'
    assert await queries.values(query, "pod") == PODS_IN_NS
    now[0] += 4.9
    await queries.values(query, "pod")
    assert len(fake.calls) == 1
    now[0] += 0.2  # expired
    fake.fail = True
    with pytest.raises(InternalError, match="unable to fetch metrics"):
        await queries.values(query, "pod")
    fake.fail = False
    assert await queries.values(query, "pod") == PODS_IN_NS  # the failure was not kept
    assert len(fake.calls) == 3


async def test_concurrent_misses_share_one_namespace_query() -> None:
    fake = FakePrometheus()
    fake.release.clear()
    queries = NamespaceQueries(fake, 5.0)
    waiting = [asyncio.create_task(queries.values('x{pod!=""}', "pod")) for _ in range(4)]
    await settle()
    fake.release.set()
    assert all(v == PODS_IN_NS for v in await asyncio.gather(*waiting))
    assert len(fake.calls) == 1


# --- the custom provider in namespace mode --------------------------------------------------


class FakeLister:
    async def list_names(self, *args: object) -> list[str]:
        return ["pod-1", "pod-2", "pod-9"]  # pod-9 has no series


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> MetricRegistry:
    path: Path = tmp_path_factory.mktemp("config") / "config.yaml"
    path.write_text(CONFIG)
    compiled = load_rules(path)
    labels = frozenset({"namespace", "pod"})
    series = {
        rule.series_query: [SeriesShape(name, labels)]
        for rule, name in zip(
            compiled.rules, ("http_requests_total", "cpu_seconds", "named_only"), strict=True
        )
    }
    return build_registry(compiled.rules, compiled.external_rules, series)


def provider(registry: MetricRegistry, fake: FakePrometheus, ttl: float) -> CustomMetricsProvider:
    return CustomMetricsProvider(
        lambda: registry,
        fake,
        FakeLister(),
        StaticRESTMapper(BUILTIN_RESOURCES),
        clock=lambda: NOW,
        namespace_query_ttl=ttl,
    )


async def answers(custom: CustomMetricsProvider, metric: str) -> list[object]:
    listed = await custom.get_metric_by_selector(PODS, "ns", EVERYTHING, metric, EVERYTHING)
    named = await custom.get_metric_by_name(PODS, "ns", "pod-3", metric, EVERYTHING)
    return [*listed, named]


async def test_namespace_mode_answers_like_per_request_queries_from_one_query(
    registry: MetricRegistry,
) -> None:
    per_request, shared = FakePrometheus(), FakePrometheus()
    metric = "http_requests_per_second"
    expected = await answers(provider(registry, per_request, 0), metric)
    custom = provider(registry, shared, 5.0)
    assert await answers(custom, metric) == expected
    assert await answers(custom, metric) == expected
    assert len(per_request.calls) == 2
    assert shared.calls == [
        ('sum(irate(http_requests_total{namespace="ns",pod!=""}[1m])) by (pod)', None)
    ]


async def test_namespace_mode_queries_per_request_for_cross_object_templates(
    registry: MetricRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakePrometheus()
    custom = provider(registry, fake, 5.0)
    with caplog.at_level(logging.WARNING):
        await answers(custom, "cpu_seconds")
        await answers(custom, "cpu_seconds")
    assert len(fake.calls) == 4 and all('pod!=""' not in q for q, _ in fake.calls)
    warnings = [r.getMessage() for r in caplog.records if "namespace-wide" in r.getMessage()]
    assert len(warnings) == 1 and "scalar" in warnings[0]


async def test_namespace_mode_queries_per_request_when_the_namespace_query_cannot_render(
    registry: MetricRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakePrometheus()
    custom = provider(registry, fake, 5.0)
    expected = await answers(provider(registry, FakePrometheus(), 0), "named_only")
    with caplog.at_level(logging.WARNING):
        assert await answers(custom, "named_only") == expected
        assert await answers(custom, "named_only") == expected
    assert len(fake.calls) == 4 and all('pod!=""' not in q for q, _ in fake.calls)
    warnings = [r.getMessage() for r in caplog.records if "namespace-wide" in r.getMessage()]
    assert len(warnings) == 1 and "cannot be rendered" in warnings[0]
