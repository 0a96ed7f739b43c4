"""The resource metrics provider (metrics.k8s.io) over an in-memory Prometheus and objects."""

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from adapter.apimachinery.labels import EVERYTHING, Selector, parse_selector
from adapter.errors import BadRequestError, NotFoundError, ServiceUnavailableError
from adapter.kube.object_cache import Informer, ObjectMeta
from adapter.naming.rules import ResourceMetricRules, load_rules
from adapter.prometheus.client import PrometheusError, QueryResult, Sample
from adapter.providers.resource import (
    EVERY_FIELD,
    NODE_INFO,
    POD_INFO,
    ClusterResourceObjects,
    ContainerMetrics,
    FieldRequirement,
    FieldSelector,
    NodeMetrics,
    PodMetrics,
    PrometheusResourceObjects,
    ResourceMetricsProvider,
    parse_field_selector,
)

CONFIG = Path(__file__).resolve().parents[2] / "config" / "resource-rules.yaml"
NOW = 1_700_000_000.0

Answer = Sequence[Sample] | Exception | QueryResult


def rules() -> ResourceMetricRules:
    compiled = load_rules(CONFIG).resource_rules
    assert compiled is not None
    return compiled


def cpu_pods(ns: str, pods: str) -> str:
    return (
        "sum by (pod,container) (\n"
        f'  rate(container_cpu_usage_seconds_total{{container!="",namespace="{ns}",{pods}}}[3m])\n'
        ")\n"
    )


def mem_pods(ns: str, pods: str) -> str:
    return (
        "sum by (pod,container) (\n"
        "  avg_over_time(container_memory_working_set_bytes"
        f'{{container!="",namespace="{ns}",{pods}}}[3m])\n'
        ")\n"
    )


def cpu_nodes(nodes: str) -> str:
    return (
        "sum  by (node) (\n"
        '  rate(node_cpu_seconds_total{mode!="idle",mode!="iowait",mode!="steal",'
        f"{nodes}}}[3m])\n"
        ")\n"
    )


def mem_nodes(nodes: str) -> str:
    return (
        "sum by (node) (\n"
        f"  avg_over_time(node_memory_MemTotal_bytes{{{nodes}}}[3m])\n"
        "  -\n"
        f"  avg_over_time(node_memory_MemAvailable_bytes{{{nodes}}}[3m])\n"
        ")\n"
    )


class FakePrometheus:
    """Answers exact query strings from a table; anything else is an empty vector."""

    def __init__(self, answers: Mapping[str, Answer] | None = None) -> None:
        self.answers: dict[str, Answer] = dict(answers or {})
        self.queries: list[tuple[str, float | None]] = []

    async def query(self, query: str, time: float | None = None) -> QueryResult:
        self.queries.append((query, time))
        answer = self.answers.get(query, ())
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, QueryResult):
            return answer
        return QueryResult("vector", tuple(answer))


class FakeObjects:
    def __init__(self, pods: Sequence[ObjectMeta] = (), nodes: Sequence[ObjectMeta] = ()) -> None:
        self._pods = list(pods)
        self._nodes = list(nodes)

    async def pods(
        self, namespace: str, label_selector: Selector, field_selector: FieldSelector
    ) -> list[ObjectMeta]:
        return [
            p
            for p in self._pods
            if (not namespace or p.namespace == namespace)
            and label_selector.matches(p.labels)
            and field_selector.matches_object(p)
        ]

    async def nodes(
        self, label_selector: Selector, field_selector: FieldSelector
    ) -> list[ObjectMeta]:
        return [
            n
            for n in self._nodes
            if label_selector.matches(n.labels) and field_selector.matches_object(n)
        ]


def pod(ns: str, name: str, **labels: str) -> ObjectMeta:
    return ObjectMeta(ns, name, labels)


def node(name: str, **labels: str) -> ObjectMeta:
    return ObjectMeta("", name, labels)


def cs(pod_name: str, container: str, value: float, ts: float = NOW - 10) -> Sample:
    return Sample({"pod": pod_name, "container": container}, value, ts)


def ns_(node_name: str, value: float, ts: float = NOW - 10) -> Sample:
    return Sample({"node": node_name}, value, ts)


def provider(prom: FakePrometheus, objects: FakeObjects) -> ResourceMetricsProvider:
    return ResourceMetricsProvider(rules(), prom, objects, clock=lambda: NOW)


# --- PromQL --------------------------------------------------------------------------------


async def test_pod_queries_one_per_namespace_and_resource_at_the_same_time() -> None:
    prom = FakePrometheus()
    objects = FakeObjects([pod("default", "b"), pod("default", "a"), pod("kube-system", "c")])
    assert await provider(prom, objects).pod_metrics("") == []
    assert sorted(prom.queries) == sorted(
        [
            (cpu_pods("default", 'pod=~"a|b"'), NOW),
            (mem_pods("default", 'pod=~"a|b"'), NOW),
            (cpu_pods("kube-system", 'pod="c"'), NOW),
            (mem_pods("kube-system", 'pod="c"'), NOW),
        ]
    )


async def test_node_queries_cover_all_nodes_in_one_query_each() -> None:
    prom = FakePrometheus()
    objects = FakeObjects(nodes=[node("n2"), node("n1")])
    assert await provider(prom, objects).node_metrics() == []
    # The listed order (the provider does not reorder names for the query).
    assert sorted(prom.queries) == sorted(
        [(cpu_nodes('node=~"n2|n1"'), NOW), (mem_nodes('node=~"n2|n1"'), NOW)]
    )


async def test_no_objects_no_queries() -> None:
    prom = FakePrometheus()
    p = provider(prom, FakeObjects())
    assert await p.pod_metrics("") == []
    assert await p.node_metrics() == []
    assert prom.queries == []


# --- values --------------------------------------------------------------------------------


async def test_node_quantities_timestamp_and_window() -> None:
    prom = FakePrometheus(
        {
            cpu_nodes('node=~"n1|n2"'): [ns_("n1", 0.25, NOW - 5), ns_("n2", 1100)],
            mem_nodes('node=~"n1|n2"'): [ns_("n1", 1048576, NOW - 7), ns_("n2", 3100, NOW - 3)],
        }
    )
    objects = FakeObjects(nodes=[node("n1", role="a"), node("n2")])
    assert await provider(prom, objects).node_metrics() == [
        NodeMetrics("n1", {"role": "a"}, NOW - 7, 180.0, "250m", "1Mi"),
        NodeMetrics("n2", {}, NOW - 10, 180.0, "1100", "3100"),
    ]


async def test_node_uses_first_sample_and_nan_negative_become_zero() -> None:
    prom = FakePrometheus(
        {
            cpu_nodes('node=~"n1|n2"'): [ns_("n1", float("nan")), ns_("n1", 5), ns_("n2", -3)],
            mem_nodes('node=~"n1|n2"'): [ns_("n1", -1), ns_("n2", float("nan"))],
        }
    )
    objects = FakeObjects(nodes=[node("n1"), node("n2")])
    found = await provider(prom, objects).node_metrics()
    assert [(m.name, m.cpu, m.memory) for m in found] == [("n1", "0", "0"), ("n2", "0", "0")]


async def test_node_missing_cpu_or_memory_is_skipped() -> None:
    prom = FakePrometheus(
        {
            cpu_nodes('node=~"n1|n2|n3"'): [ns_("n1", 1), ns_("n3", 1)],
            mem_nodes('node=~"n1|n2|n3"'): [ns_("n1", 1), ns_("n2", 1)],
        }
    )
    objects = FakeObjects(nodes=[node("n1"), node("n2"), node("n3")])
    assert [m.name for m in await provider(prom, objects).node_metrics()] == ["n1"]


@pytest.mark.parametrize("failing", ["cpu", "memory"])
async def test_node_query_error_gives_empty_list(failing: str) -> None:
    query = cpu_nodes('node="n1"') if failing == "cpu" else mem_nodes('node="n1"')
    prom = FakePrometheus(
        {
            cpu_nodes('node="n1"'): [ns_("n1", 1)],
            mem_nodes('node="n1"'): [ns_("n1", 1)],
            query: PrometheusError("connection refused", error_type="connection"),
        }
    )
    assert await provider(prom, FakeObjects(nodes=[node("n1")])).node_metrics() == []


async def test_node_non_vector_result_gives_empty_list() -> None:
    prom = FakePrometheus(
        {
            cpu_nodes('node="n1"'): QueryResult("scalar", (Sample({}, 1, NOW),)),
            mem_nodes('node="n1"'): [ns_("n1", 1)],
        }
    )
    assert await provider(prom, FakeObjects(nodes=[node("n1")])).node_metrics() == []


async def test_pod_containers_quantities_and_earliest_timestamp() -> None:
    prom = FakePrometheus(
        {
            cpu_pods("default", 'pod="p"'): [
                cs("p", "app", 0.25, NOW - 4),
                cs("p", "sidecar", 1100, NOW - 9),
            ],
            mem_pods("default", 'pod="p"'): [
                cs("p", "app", 4200.5, NOW - 6),
                cs("p", "sidecar", 1048576, NOW - 2),
            ],
        }
    )
    objects = FakeObjects([pod("default", "p", app="web")])
    assert await provider(prom, objects).pod_metrics("default") == [
        PodMetrics(
            "default",
            "p",
            {"app": "web"},
            NOW - 9,
            180.0,
            [
                ContainerMetrics("app", "250m", "4200500m"),
                ContainerMetrics("sidecar", "1100", "1Mi"),
            ],
        )
    ]


async def test_pod_nan_negative_and_missing_container_values_are_zero() -> None:
    prom = FakePrometheus(
        {
            cpu_pods("default", 'pod="p"'): [
                cs("p", "a", float("nan")),
                cs("p", "b", -0.5),
                cs("p", "c", 2),
            ],
            mem_pods("default", 'pod="p"'): [cs("p", "a", -7), cs("p", "d", 3100)],
        }
    )
    found = await provider(prom, FakeObjects([pod("default", "p")])).pod_metrics("default")
    assert found[0].containers == [
        ContainerMetrics("a", "0", "0"),
        ContainerMetrics("b", "0", "0"),
        ContainerMetrics("c", "2", "0"),  # no memory sample
        ContainerMetrics("d", "0", "3100"),  # no CPU sample
    ]


async def test_pod_missing_cpu_or_memory_entirely_is_skipped() -> None:
    names = 'pod=~"both|cpu-only|mem-only|none"'
    prom = FakePrometheus(
        {
            cpu_pods("ns", names): [cs("both", "c", 1), cs("cpu-only", "c", 1)],
            mem_pods("ns", names): [cs("both", "c", 1), cs("mem-only", "c", 1)],
        }
    )
    objects = FakeObjects([pod("ns", n) for n in ("both", "cpu-only", "mem-only", "none")])
    assert [m.name for m in await provider(prom, objects).pod_metrics("ns")] == ["both"]


async def test_failing_namespace_skips_only_its_pods() -> None:
    prom = FakePrometheus(
        {
            cpu_pods("good", 'pod="a"'): [cs("a", "c", 1)],
            mem_pods("good", 'pod="a"'): [cs("a", "c", 1)],
            cpu_pods("bad", 'pod="b"'): [cs("b", "c", 1)],
            mem_pods("bad", 'pod="b"'): PrometheusError("boom", error_type="execution"),
            cpu_pods("odd", 'pod="c"'): QueryResult("matrix", ()),
            mem_pods("odd", 'pod="c"'): [cs("c", "c", 1)],
        }
    )
    objects = FakeObjects([pod("bad", "b"), pod("good", "a"), pod("odd", "c")])
    found = await provider(prom, objects).pod_metrics("")
    assert [(m.namespace, m.name) for m in found] == [("good", "a")]


async def test_pods_sorted_by_namespace_then_name() -> None:
    answers: dict[str, Answer] = {}
    for ns, names in (("a", 'pod=~"x|y"'), ("b", 'pod=~"w|z"')):
        samples = [cs(n, "c", 1) for n in "wxyz"]
        answers[cpu_pods(ns, names)] = samples
        answers[mem_pods(ns, names)] = samples
    objects = FakeObjects([pod("b", "z"), pod("a", "y"), pod("b", "w"), pod("a", "x")])
    found = await provider(FakePrometheus(answers), objects).pod_metrics("")
    assert [(m.namespace, m.name) for m in found] == [
        ("a", "x"),
        ("a", "y"),
        ("b", "w"),
        ("b", "z"),
    ]


async def test_pod_selectors_and_name_restrict_the_query() -> None:
    prom = FakePrometheus()
    objects = FakeObjects([pod("ns", "a", app="x"), pod("ns", "b", app="y"), pod("ns", "c")])
    p = provider(prom, objects)
    await p.pod_metrics("ns", None, parse_selector("app"), parse_field_selector("metadata.name!=b"))
    assert {q for q, _ in prom.queries} == {cpu_pods("ns", 'pod="a"'), mem_pods("ns", 'pod="a"')}
    prom.queries.clear()
    await p.pod_metrics("ns", "c")
    assert {q for q, _ in prom.queries} == {cpu_pods("ns", 'pod="c"'), mem_pods("ns", 'pod="c"')}


async def test_node_names_restrict_the_query() -> None:
    prom = FakePrometheus()
    objects = FakeObjects(nodes=[node("n1"), node("n2"), node("n3")])
    await provider(prom, objects).node_metrics(["n3", "n1", "zz"])
    assert {q for q, _ in prom.queries} == {cpu_nodes('node=~"n1|n3"'), mem_nodes('node=~"n1|n3"')}


# --- single objects ------------------------------------------------------------------------


async def test_get_node_and_not_found_errors() -> None:
    prom = FakePrometheus(
        {cpu_nodes('node="n1"'): [ns_("n1", 2)], mem_nodes('node="n1"'): [ns_("n1", 2048)]}
    )
    p = provider(prom, FakeObjects(nodes=[node("n1"), node("quiet")]))
    assert await p.get_node_metrics("n1") == NodeMetrics("n1", {}, NOW - 10, 180.0, "2", "2Ki")
    with pytest.raises(NotFoundError) as unknown:
        await p.get_node_metrics("gone")
    assert unknown.value.status() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'node "gone" not found',
        "reason": "NotFound",
        "details": {"name": "gone", "kind": "node"},
        "code": 404,
    }
    with pytest.raises(NotFoundError) as quiet:
        await p.get_node_metrics("quiet")
    assert quiet.value.message == 'nodemetrics.metrics.k8s.io "quiet" not found'
    assert quiet.value.details == {
        "name": "quiet",
        "group": "metrics.k8s.io",
        "kind": "nodemetrics",
    }


async def test_get_pod_and_not_found_errors() -> None:
    prom = FakePrometheus(
        {cpu_pods("ns", 'pod="p"'): [cs("p", "c", 1)], mem_pods("ns", 'pod="p"'): [cs("p", "c", 1)]}
    )
    p = provider(prom, FakeObjects([pod("ns", "p"), pod("ns", "quiet"), pod("other", "p")]))
    found = await p.get_pod_metrics("ns", "p")
    assert (found.namespace, found.name) == ("ns", "p")
    with pytest.raises(NotFoundError) as unknown:
        await p.get_pod_metrics("ns", "gone")
    assert unknown.value.message == 'pods "gone" not found'
    assert unknown.value.details == {"name": "gone", "kind": "pods"}
    with pytest.raises(NotFoundError) as quiet:
        await p.get_pod_metrics("ns", "quiet")
    assert quiet.value.message == 'podmetrics.metrics.k8s.io "ns/quiet" not found'
    assert quiet.value.details == {
        "name": "ns/quiet",
        "group": "metrics.k8s.io",
        "kind": "podmetrics",
    }


# --- field selectors -----------------------------------------------------------------------


def test_parse_field_selector() -> None:
    assert parse_field_selector("") == EVERY_FIELD
    assert parse_field_selector("metadata.name=a,metadata.namespace!=b,,metadata.name==c") == (
        FieldSelector(
            (
                FieldRequirement("metadata.name", True, "a"),
                FieldRequirement("metadata.namespace", False, "b"),
                FieldRequirement("metadata.name", True, "c"),
            )
        )
    )
    escaped = parse_field_selector(r"metadata.name=a\,b\=c\\d")
    assert escaped.requirements[0].value == "a,b=c\\d"
    assert str(escaped) == r"metadata.name=a\,b\=c\\d"
    selector = parse_field_selector("metadata.namespace=x,metadata.name!=y")
    assert selector.matches_object(ObjectMeta("x", "z", {}))
    assert not selector.matches_object(ObjectMeta("x", "y", {}))
    assert parse_field_selector("metadata.namespace=").matches_object(ObjectMeta("", "n", {}))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
        (
            "spec.nodeName=n1",
            '"spec.nodeName" is not a known field selector: only "metadata.name", '
            '"metadata.namespace"',
        ),
        (r"metadata.name=a\x", r"invalid field selector: invalid escape sequence in a\x"),
        ("metadata.name=a=b", "invalid field selector: unescaped = in a=b"),
    ],
)
def test_parse_field_selector_errors(text: str, message: str) -> None:
    with pytest.raises(BadRequestError) as err:
        parse_field_selector(text)
    assert err.value.message == message


# --- object sources ------------------------------------------------------------------------


class FakeKubeAPI:
    """LIST answers from a table; watches never send anything."""

    def __init__(self, routes: dict[str, dict[str, Any]]) -> None:
        self.routes = routes
        self.gets: list[tuple[str, Mapping[str, str] | None]] = []
        self.watch_params: list[Mapping[str, str] | None] = []
        self._never = asyncio.Event()

    async def get(
        self, path: str, params: Mapping[str, str] | None = None, *, accept: str | None = None
    ) -> dict[str, Any]:
        self.gets.append((path, params))
        return self.routes[path]

    async def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    async def watch(
        self, path: str, params: Mapping[str, str] | None = None, *, accept: str | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        self.watch_params.append(params)
        await self._never.wait()
        yield {}


def items(*objects: tuple[str, str, dict[str, str]]) -> dict[str, Any]:
    return {
        "metadata": {"resourceVersion": "7"},
        "items": [
            {"metadata": {"namespace": ns, "name": name, "labels": labels}}
            for ns, name, labels in objects
        ],
    }


async def test_cluster_objects_from_informers() -> None:
    api = FakeKubeAPI(
        {
            "/api/v1/pods": items(("b", "p2", {"app": "x"}), ("a", "p1", {}), ("b", "p1", {})),
            "/api/v1/nodes": items(("", "n2", {"zone": "z"}), ("", "n1", {})),
        }
    )
    objects = ClusterResourceObjects.for_cluster(api, sync_timeout=1.0)
    assert objects.pod_informer.info == POD_INFO
    assert objects.node_informer.info == NODE_INFO
    objects.start()
    try:
        pods = await objects.pods("", EVERYTHING, EVERY_FIELD)
        assert [(p.namespace, p.name) for p in pods] == [("a", "p1"), ("b", "p1"), ("b", "p2")]
        assert [p.name for p in await objects.pods("b", parse_selector("app=x"), EVERY_FIELD)] == [
            "p2"
        ]
        only = parse_field_selector("metadata.namespace=b,metadata.name=p1")
        assert [(p.namespace, p.name) for p in await objects.pods("", EVERYTHING, only)] == [
            ("b", "p1")
        ]
        assert [n.name for n in await objects.nodes(EVERYTHING, EVERY_FIELD)] == ["n1", "n2"]
        assert [n.name for n in await objects.nodes(parse_selector("zone"), EVERY_FIELD)] == ["n2"]
        await asyncio.sleep(0)
    finally:
        await objects.close()
    assert ("/api/v1/pods", {"fieldSelector": "status.phase=Running"}) in api.gets
    assert ("/api/v1/nodes", None) in api.gets
    assert {"resourceVersion": "7", "allowWatchBookmarks": "true"} in api.watch_params
    assert {
        "resourceVersion": "7",
        "allowWatchBookmarks": "true",
        "fieldSelector": "status.phase=Running",
    } in api.watch_params


async def test_cluster_objects_not_synced_is_503() -> None:
    api = FakeKubeAPI({})
    objects = ClusterResourceObjects(
        Informer(api, POD_INFO), Informer(api, NODE_INFO), sync_timeout=0.01
    )
    with pytest.raises(ServiceUnavailableError):
        await objects.pods("", EVERYTHING, EVERY_FIELD)


class FakeSeries:
    def __init__(self, answers: dict[str, list[dict[str, str]]]) -> None:
        self.answers = answers
        self.calls: list[tuple[tuple[str, ...], float | None, float | None]] = []

    async def series(
        self, matches: Sequence[str], start: float | None = None, end: float | None = None
    ) -> list[dict[str, str]]:
        self.calls.append((tuple(matches), start, end))
        return [s for m in matches for s in self.answers.get(m, [])]


async def test_prometheus_objects_from_series() -> None:
    source = FakeSeries(
        {
            '{pod!="",namespace!=""}': [
                {"__name__": "a", "namespace": "ns", "pod": "p", "container": "x", "job": "k"},
                {"__name__": "b", "namespace": "ns", "pod": "p", "container": "y", "job": "k"},
                {"__name__": "a", "namespace": "ns2", "pod": "q", "job": "other"},
            ],
            '{node!=""}': [{"__name__": "n", "node": "n2"}, {"__name__": "n", "node": "n1"}],
        }
    )
    clock: Callable[[], float] = lambda: NOW  # noqa: E731
    objects = PrometheusResourceObjects.from_rules(rules(), source, lookback=60.0, clock=clock)
    pods = await objects.pods("", EVERYTHING, EVERY_FIELD)
    assert pods == [
        ObjectMeta("ns", "p", {"namespace": "ns", "pod": "p", "job": "k"}),
        ObjectMeta("ns2", "q", {"namespace": "ns2", "pod": "q", "job": "other"}),
    ]
    assert source.calls == [(('{pod!="",namespace!=""}',), NOW - 60.0, NOW)]
    assert [p.name for p in await objects.pods("", parse_selector("job=other"), EVERY_FIELD)] == [
        "q"
    ]
    assert [p.name for p in await objects.pods("ns", EVERYTHING, EVERY_FIELD)] == ["p"]
    nodes = await objects.nodes(EVERYTHING, parse_field_selector("metadata.name!=n3"))
    assert nodes == [ObjectMeta("", "n1", {"node": "n1"}), ObjectMeta("", "n2", {"node": "n2"})]


async def test_prometheus_objects_series_failure_is_500() -> None:
    class Failing:
        async def series(
            self, matches: Sequence[str], start: float | None = None, end: float | None = None
        ) -> list[dict[str, str]]:
            raise PrometheusError("down", error_type="connection")

    objects = PrometheusResourceObjects.from_rules(rules(), Failing())
    with pytest.raises(Exception) as err:
        await objects.nodes(EVERYTHING, EVERY_FIELD)
    assert getattr(err.value, "code", None) == 500


def rules_from(tmp_path: Path, text: str) -> ResourceMetricRules:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    compiled = load_rules(path).resource_rules
    assert compiled is not None
    return compiled


async def test_prometheus_objects_from_partial_rules(tmp_path: Path) -> None:
    # cpu maps only pods; memory maps namespaces too; nothing maps nodes.
    partial = rules_from(
        tmp_path,
        "resourceRules:\n"
        "  cpu: {resources: {overrides: {kube_pod: {resource: pod}}}}\n"
        "  memory: {resources: {overrides: {kube_ns: {resource: namespace}}}}\n",
    )
    source = FakeSeries({'{kube_pod!="",kube_ns!=""}': [{"kube_pod": "p", "kube_ns": "ns"}]})
    objects = PrometheusResourceObjects.from_rules(partial, source)
    assert await objects.pods("", EVERYTHING, EVERY_FIELD) == [
        ObjectMeta("ns", "p", {"kube_pod": "p", "kube_ns": "ns"})
    ]
    # No label names nodes, so no query for them could be built: none are listed or asked for.
    assert await objects.nodes(EVERYTHING, EVERY_FIELD) == []
    assert [matches for matches, _, _ in source.calls] == [('{kube_pod!="",kube_ns!=""}',)]


async def test_pods_need_cpu_and_memory_queries_that_can_be_built(tmp_path: Path) -> None:
    only_cpu = rules_from(
        tmp_path,
        "resourceRules:\n"
        "  cpu:\n"
        "    containerQuery: sum(c{<<.LabelMatchers>>}) by (<<.GroupBy>>)\n"
        "    nodeQuery: sum(n{<<.LabelMatchers>>}) by (<<.GroupBy>>)\n"
        "    resources: {template: '<<.Resource>>'}\n"
        "    containerLabel: container\n",
    )
    prom = FakePrometheus(
        {
            'sum(c{namespace="ns",pod="p"}) by (pod,container)': [cs("p", "c", 1.0)],
            'sum(n{node="n"}) by (node)': [ns_("n", 1.0)],
        }
    )
    objects = FakeObjects([pod("ns", "p")], [node("n")])
    resource = ResourceMetricsProvider(only_cpu, prom, objects, clock=lambda: NOW)
    # As Go's queryBoth: the memory query cannot be built, so the namespace and the nodes
    # are skipped; the cpu query still runs.
    assert await resource.pod_metrics("") == []
    assert await resource.node_metrics() == []
    assert len(prom.queries) == 2
    with pytest.raises(NotFoundError):
        await resource.get_pod_metrics("ns", "p")
