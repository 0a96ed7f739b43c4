"""The metric registry: series shapes through rules into metrics."""

import asyncio
import logging
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from adapter.discovery.registry import CustomMetricInfo, SeriesShape, build_registry
from adapter.discovery.relister import Relister
from adapter.kube.rest_mapper import GroupResource
from adapter.naming.rules import CompiledConfig, load_rules

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
PODS = GroupResource("", "pods")
NAMESPACES = GroupResource("", "namespaces")


def shape(name: str, *labels: str) -> SeriesShape:
    return SeriesShape(name, frozenset(labels))


def load(tmp_path: Path, text: str) -> CompiledConfig:
    path = tmp_path / "c.yaml"
    path.write_text(textwrap.dedent(text))
    return load_rules(path)


def test_helm_rules_register_pod_and_namespace_metrics() -> None:
    compiled = load_rules(CONFIG_DIR / "helm-default-rules.yaml")
    query = compiled.rules[0].series_query
    registry = build_registry(
        compiled.rules,
        (),
        {
            query: [
                shape("container_cpu_usage_seconds_total", "namespace", "pod", "container"),
                shape("container_memory_working_set_bytes", "namespace", "pod", "container"),
                shape("container_network_receive_bytes_total", "namespace", "pod"),
            ]
        },
    )
    assert set(registry.custom) == {
        CustomMetricInfo(PODS, True, "cpu_usage"),
        CustomMetricInfo(NAMESPACES, False, "cpu_usage"),
        CustomMetricInfo(PODS, True, "memory_working_set_bytes"),
        CustomMetricInfo(NAMESPACES, False, "memory_working_set_bytes"),
        CustomMetricInfo(PODS, True, "network_receive_bytes"),
        CustomMetricInfo(NAMESPACES, False, "network_receive_bytes"),
    }
    found = registry.lookup_custom(CustomMetricInfo(PODS, True, "cpu_usage"))
    assert found is not None
    assert found.series_name == "container_cpu_usage_seconds_total"
    assert found.rule.path == "rules[0]"


def test_template_associates_every_label_naming_a_resource(tmp_path: Path) -> None:
    compiled = load(
        tmp_path,
        """
        rules:
        - seriesQuery: '{namespace!=""}'
          resources: {template: "<<.Resource>>"}
          metricsQuery: sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)
        """,
    )
    registry = build_registry(
        compiled.rules,
        (),
        {'{namespace!=""}': [shape("up", "namespace", "job", "instance", "storageclass")]},
    )
    assert {(str(i.group_resource), i.namespaced) for i in registry.custom} == {
        ("namespaces", False),
        ("jobs.batch", True),
        # Cluster-scoped: the Go adapter would register this as namespaced.
        ("storageclasses.storage.k8s.io", False),
    }


def test_filters_and_collisions_last_rule_wins(tmp_path: Path) -> None:
    compiled = load(
        tmp_path,
        """
        rules:
        - seriesQuery: a
          resources: {overrides: {pod: {resource: pod}}}
          name: {matches: "^(.*)_total$"}
          metricsQuery: first
        - seriesQuery: b
          resources: {overrides: {pod: {resource: pod}}}
          name: {matches: "^(.*)_count$"}
          seriesFilters: [{isNot: "^skip"}]
          metricsQuery: second
        """,
    )
    registry = build_registry(
        compiled.rules,
        (),
        {
            "a": [shape("requests_total", "pod")],
            "b": [
                shape("requests_count", "pod"),
                shape("skip_count", "pod"),
                shape("x_total", "pod"),
            ],
        },
    )
    assert set(registry.custom) == {CustomMetricInfo(PODS, True, "requests")}
    winner = registry.lookup_custom(CustomMetricInfo(PODS, True, "requests"))
    assert winner is not None and winner.rule.path == "rules[1]"


def test_external_metrics_and_case_insensitive_lookup(tmp_path: Path) -> None:
    compiled = load(
        tmp_path,
        """
        externalRules:
        - seriesQuery: '{__name__=~"Queue.*"}'
          metricsQuery: sum(<<.Series>>{<<.LabelMatchers>>})
          resources: {namespaced: false}
        """,
    )
    registry = build_registry(
        (), compiled.external_rules, {'{__name__=~"Queue.*"}': [shape("QueueDepth", "topic")]}
    )
    assert list(registry.external) == ["QueueDepth"]
    assert registry.lookup_external("QueueDepth") is registry.lookup_external("queuedepth")
    assert registry.lookup_external("other") is None


def test_series_shape_drops_label_values() -> None:
    a = SeriesShape.from_labels({"__name__": "m", "pod": "a", "namespace": "x"})
    b = SeriesShape.from_labels({"__name__": "m", "pod": "b", "namespace": "y"})
    assert a == b == shape("m", "pod", "namespace")


class FakeSeriesLister:
    """An in-memory series source whose answers a test changes between relists. Like
    PrometheusClient.stream_series it hands the series over in batches (of `batch`); an
    exception answer is raised after `fail_after` series were handed over."""

    def __init__(
        self,
        answers: dict[str, list[dict[str, str]] | Exception],
        batch: int = 1,
        fail_after: list[dict[str, str]] | None = None,
    ) -> None:
        self.answers = answers
        self.batch = batch
        self.fail_after = fail_after or []
        self.calls: list[tuple[list[str], float | None]] = []

    async def stream_series(
        self,
        matches: Sequence[str],
        start: float | None = None,
        end: float | None = None,
        *,
        sink: Callable[[list[dict[str, str]]], None],
    ) -> int:
        self.calls.append((list(matches), start))
        answer = self.answers[matches[0]]
        if isinstance(answer, Exception):
            if self.fail_after:
                sink(list(self.fail_after))
            raise answer
        for index in range(0, len(answer), self.batch):
            sink(answer[index : index + self.batch])
        return len(answer)


async def test_relister_keeps_last_good_series_per_query(tmp_path: Path) -> None:
    compiled = load(
        tmp_path,
        """
        rules:
        - {seriesQuery: a, resources: {overrides: {pod: {resource: pod}}}, metricsQuery: q}
        - {seriesQuery: a, resources: {overrides: {pod: {resource: pod}}}, metricsQuery: q, name: {as: "copy"}}
        - {seriesQuery: b, resources: {overrides: {pod: {resource: pod}}}, metricsQuery: q}
        """,
    )
    lister = FakeSeriesLister(
        {"a": [{"__name__": "m1", "pod": "p"}], "b": [{"__name__": "m2", "pod": "p"}]}
    )
    relister = Relister(lister, compiled.rules, (), interval=60, max_age=120, clock=lambda: 1000.0)
    result = await relister.relist_once()
    assert result.ok and relister.ready.is_set()
    # One call per distinct query, over [now - max_age, now].
    assert sorted(lister.calls) == [(["a"], 880.0), (["b"], 880.0)]
    assert {i.metric for i in relister.registry.custom} == {"m1", "copy", "m2"}

    lister.answers["a"] = RuntimeError("prometheus down")
    lister.answers["b"] = [{"__name__": "m3", "pod": "p"}]
    result = await relister.relist_once()
    assert result.failures == {"a": "prometheus down"}
    assert {i.metric for i in relister.registry.custom} == {"m1", "copy", "m3"}


async def test_relister_not_ready_until_a_query_succeeds(tmp_path: Path) -> None:
    compiled = load(
        tmp_path,
        "rules:\n- {seriesQuery: a, resources: {overrides: {pod: {resource: pod}}}, metricsQuery: q}\n",
    )
    lister = FakeSeriesLister({"a": RuntimeError("connection refused")})
    relister = Relister(lister, compiled.rules, (), interval=0.05, max_age=1)
    await relister.relist_once()
    assert not relister.ready.is_set()
    assert len(relister.registry) == 0
    task = asyncio.create_task(relister.run())
    try:
        lister.answers["a"] = [{"__name__": "m", "pod": "p"}]
        # The loop retries with a backoff capped at the interval and recovers by itself.
        await asyncio.wait_for(relister.ready.wait(), timeout=5)
        assert len(relister.registry) == 1
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_relister_shapes_are_those_of_the_whole_series_list(tmp_path: Path) -> None:
    """Folding batches as they arrive gives the registry that the whole list gives."""
    compiled = load(
        tmp_path,
        """
        rules:
        - seriesQuery: '{namespace!=""}'
          resources: {template: "<<.Resource>>"}
          metricsQuery: q
        externalRules:
        - seriesQuery: '{namespace!=""}'
          metricsQuery: q
        """,
    )
    series = [
        {"__name__": "up", "namespace": "a", "pod": "p1", "job": "j"},
        {"job": "k", "__name__": "up", "pod": "p2", "namespace": "b"},  # same shape, reordered
        {"__name__": "up", "namespace": "a", "service": "s"},  # same name, other labels
        {"__name__": "up", "namespace": "a", "pod": "p1", "job": "j"},  # a duplicate
        {"namespace": "a", "node": "n"},  # no name
        {"__name__": "requests_total", "namespace": "a", "deployment": "d"},
        {"__name__": "requests_total", "namespace": "b", "deployment": "e"},
    ]
    query = '{namespace!=""}'
    expected = build_registry(
        compiled.rules,
        compiled.external_rules,
        {query: frozenset(SeriesShape.from_labels(labels) for labels in series)},
    )
    assert len(expected) > 0
    for batch in (1, 2, 3, len(series)):
        lister = FakeSeriesLister({query: series}, batch=batch)
        relister = Relister(
            lister, compiled.rules, compiled.external_rules, interval=60, max_age=60
        )
        assert (await relister.relist_once()).ok
        assert relister.registry == expected, batch


async def test_relister_discards_the_batches_of_a_failed_list(tmp_path: Path) -> None:
    compiled = load(
        tmp_path,
        "rules:\n- {seriesQuery: a, resources: {overrides: {pod: {resource: pod}}}, metricsQuery: q}\n",
    )
    lister = FakeSeriesLister({"a": [{"__name__": "m1", "pod": "p"}]})
    relister = Relister(lister, compiled.rules, (), interval=60, max_age=60)
    await relister.relist_once()
    # A body cut short after some series: none of them count, the last good list stays.
    lister.answers["a"] = RuntimeError("truncated")
    lister.fail_after = [{"__name__": "m2", "pod": "p"}]
    result = await relister.relist_once()
    assert result.failures == {"a": "truncated"}
    assert {i.metric for i in relister.registry.custom} == {"m1"}


async def test_each_failed_relist_logs_one_line_with_its_cause_and_retry(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    compiled = load(
        tmp_path,
        """
        rules:
        - {seriesQuery: a, resources: {overrides: {pod: {resource: pod}}}, metricsQuery: q}
        - {seriesQuery: b, resources: {overrides: {pod: {resource: pod}}}, metricsQuery: q}
        """,
    )
    down = RuntimeError("connection: Cannot connect to host prometheus:9090")
    lister = FakeSeriesLister({"a": down, "b": down})
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        if len(delays) == 5:
            raise asyncio.CancelledError

    relister = Relister(lister, compiled.rules, (), interval=6, max_age=60, sleep=sleep)
    with (
        caplog.at_level(logging.INFO, logger="adapter.discovery.relister"),
        pytest.raises(asyncio.CancelledError),
    ):
        await relister.run()
    assert delays == [1, 2, 4, 6, 6]
    assert [r.getMessage() for r in caplog.records] == [
        "relist: unable to list series for 2 of 2 series queries (no earlier series to keep; "
        f"0 metrics): connection: Cannot connect to host prometheus:9090; retrying in {d}"
        for d in ("1s", "2s", "4s", "6s", "6s")
    ]
    # One query back, the other failing for another reason: still one line, with both.
    caplog.clear()
    lister.answers["a"] = [{"__name__": "m", "pod": "p"}]
    lister.answers["b"] = RuntimeError("bad_data: parse error")
    result = await relister.relist_once()
    lister.answers["a"] = RuntimeError("timeout")
    result = await relister.relist_once()
    assert not result.ok
    assert [r.getMessage() for r in caplog.records] == [
        "relist: unable to list series for 1 of 2 series queries (no earlier series to keep; "
        "1 metrics): bad_data: parse error",
        "relist: unable to list series for 2 of 2 series queries (keeping the last good series "
        "of 1; 1 metrics): 1 with timeout; 1 with bad_data: parse error",
    ]
