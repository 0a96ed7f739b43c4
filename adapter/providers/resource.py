"""metrics.k8s.io: CPU and memory of pods and nodes (what `kubectl top` and the HPA read).

Port of the Go adapter's `pkg/resourceprovider/provider.go` behind metrics-server's
`pkg/api` storage. The objects come first (Running pods, nodes: from watch caches with a
cluster, from Prometheus series without one); then, per namespace, the `resourceRules`
containerQuery for CPU and for memory runs concurrently over that namespace's pods, and one
nodeQuery each for CPU and memory covers all requested nodes. As in Go:
- NaN and negative samples become 0; CPU is rendered DecimalSI, memory BinarySI;
- a pod without any CPU sample or without any memory sample is left out; a container with
  only one of them gets "0" for the other;
- a namespace whose queries fail is left out (and logged); a failing node query gives an
  empty node list, never an HTTP error. A query the rules cannot build (an empty
  containerQuery, no label for namespaces) fails the same way;
- timestamps are the earliest sample timestamp, the window is `resourceRules.window`.
"""

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from adapter.apimachinery.labels import EVERYTHING, Selector
from adapter.apimachinery.quantity import binary_si_quantity, decimal_si_quantity
from adapter.errors import BadRequestError, NotFoundError, ServiceUnavailableError, UnknownError
from adapter.kube.api import KubeAPI
from adapter.kube.object_cache import Informer, ObjectMeta
from adapter.kube.rest_mapper import NAMESPACES, NODES, PODS, GroupResource, ResourceInfo
from adapter.naming.errors import NamingError
from adapter.naming.rules import ResourceMetricRules, ResourceQuery
from adapter.prometheus.client import PrometheusError, Sample
from adapter.providers.querier import MetricQuerier, route
from adapter.tasks import cancel_and_wait

__all__ = [
    "EVERY_FIELD",
    "METRICS_GROUP",
    "NODE_INFO",
    "POD_INFO",
    "ClusterResourceObjects",
    "ContainerMetrics",
    "FieldRequirement",
    "FieldSelector",
    "NodeMetrics",
    "PodMetrics",
    "PrometheusResourceObjects",
    "ResourceMetricsProvider",
    "ResourceObjects",
    "SeriesSource",
    "node_metrics_not_found",
    "parse_field_selector",
    "pod_metrics_not_found",
]

log = logging.getLogger(__name__)

METRICS_GROUP = "metrics.k8s.io"

POD_INFO = ResourceInfo("", "v1", "pods", "pod", "Pod", True)
NODE_INFO = ResourceInfo("", "v1", "nodes", "node", "Node", False)

# The fields metrics-server filters on (`generic.AddObjectMetaFieldsSet`); the API server's
# default field label conversion rejects every other field.
_KNOWN_FIELDS = ("metadata.name", "metadata.namespace")


# --- field selectors ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    field: str
    equals: bool  # `=`/`==` when True, `!=` when False
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        # As k8s `hasTerm`/`notHasTerm`: a missing field has the value "".
        return (fields.get(self.field, "") == self.value) == self.equals

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")
        return f"{self.field}{'=' if self.equals else '!='}{escaped}"


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """An AND of `metadata.name`/`metadata.namespace` equality terms (k8s `fields.Selector`)."""

    requirements: tuple[FieldRequirement, ...] = ()

    def empty(self) -> bool:
        return not self.requirements

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(req.matches(fields) for req in self.requirements)

    def matches_object(self, meta: ObjectMeta) -> bool:
        return self.matches({"metadata.name": meta.name, "metadata.namespace": meta.namespace})

    def __str__(self) -> str:
        return ",".join(str(req) for req in self.requirements)


EVERY_FIELD = FieldSelector()


def _split_terms(text: str) -> list[str]:
    """k8s `splitTerms`: split on commas not escaped by a backslash."""
    terms: list[str] = []
    current: list[str] = []
    escaped = False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char == ",":
            terms.append("".join(current))
            current = []
        else:
            current.append(char)
    terms.append("".join(current))
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    """k8s `splitTerm`: the first `!=`, `==` or `=`, scanning left to right."""
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op) :]
    return None


def _unescape(value: str) -> str:
    """k8s `fields.UnescapeValue`."""
    out: list[str] = []
    escaped = False
    for char in value:
        if escaped:
            if char not in "\\,=":
                raise BadRequestError(f"invalid field selector: invalid escape sequence in {value}")
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",=":
            raise BadRequestError(f"invalid field selector: unescaped {char} in {value}")
        else:
            out.append(char)
    if escaped:
        raise BadRequestError(f"invalid field selector: invalid escape sequence in {value}")
    return "".join(out)


def parse_field_selector(text: str) -> FieldSelector:
    """Parse a `fieldSelector` parameter; errors are 400s, as the API server's are."""
    requirements: list[FieldRequirement] = []
    for term in _split_terms(text):
        if not term:
            continue
        parts = _split_term(term)
        if parts is None:
            raise BadRequestError(f"invalid selector: '{text}'; can't understand '{term}'")
        key, op, value = parts
        if key not in _KNOWN_FIELDS:
            raise BadRequestError(
                f'"{key}" is not a known field selector: only "metadata.name", "metadata.namespace"'
            )
        requirements.append(FieldRequirement(key, op != "!=", _unescape(value)))
    return FieldSelector(tuple(requirements))


# --- where pods and nodes come from ---------------------------------------------------------


class ResourceObjects(Protocol):
    """The pods and nodes that resource metrics are reported for."""

    async def pods(
        self, namespace: str, label_selector: Selector, field_selector: FieldSelector
    ) -> list[ObjectMeta]:
        """Running pods of `namespace` ("" = all namespaces) matching both selectors."""
        ...

    async def nodes(
        self, label_selector: Selector, field_selector: FieldSelector
    ) -> list[ObjectMeta]:
        """Nodes matching both selectors."""
        ...


def _select(
    objects: Iterable[ObjectMeta],
    namespace: str,
    label_selector: Selector,
    field_selector: FieldSelector,
) -> list[ObjectMeta]:
    selected = [
        meta
        for meta in objects
        if (not namespace or meta.namespace == namespace)
        and label_selector.matches(meta.labels)
        and field_selector.matches_object(meta)
    ]
    selected.sort(key=lambda meta: (meta.namespace, meta.name))
    return selected


class ClusterResourceObjects:
    """Pods and nodes from two metadata list+watch caches, as metrics-server's informers.

    The pod cache holds only `status.phase=Running` pods (the API server filters, and reports a
    pod that stops running as deleted). Requests wait up to `sync_timeout` for the first LIST;
    a cache still empty after that answers 503 rather than an empty, misleading list.
    """

    def __init__(self, pods: Informer, nodes: Informer, *, sync_timeout: float = 5.0) -> None:
        self.pod_informer = pods
        self.node_informer = nodes
        self._sync_timeout = sync_timeout
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    def for_cluster(cls, api: KubeAPI, *, sync_timeout: float = 5.0) -> "ClusterResourceObjects":
        """Informers for Running pods and for nodes over `api`; call `start()` to run them."""
        return cls(
            Informer(api, POD_INFO, field_selector="status.phase=Running"),
            Informer(api, NODE_INFO),
            sync_timeout=sync_timeout,
        )

    def start(self) -> None:
        """Run both informers as tasks of the running loop (idempotent)."""
        if not self._tasks:
            loop = asyncio.get_running_loop()
            self._tasks = [
                loop.create_task(self.pod_informer.run()),
                loop.create_task(self.node_informer.run()),
            ]

    async def close(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks.clear()

    async def _synced(self, informer: Informer) -> Informer:
        if not informer.synced.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(informer.synced.wait(), self._sync_timeout)
        if not informer.synced.is_set():
            raise ServiceUnavailableError(
                f"the {informer.info.resource} cache has not synced with the API server yet"
            )
        return informer

    async def pods(
        self, namespace: str, label_selector: Selector, field_selector: FieldSelector
    ) -> list[ObjectMeta]:
        informer = await self._synced(self.pod_informer)
        return _select(informer.objects.values(), namespace, label_selector, field_selector)

    async def nodes(
        self, label_selector: Selector, field_selector: FieldSelector
    ) -> list[ObjectMeta]:
        informer = await self._synced(self.node_informer)
        return _select(informer.objects.values(), "", label_selector, field_selector)


class SeriesSource(Protocol):
    """What PrometheusResourceObjects needs of a Prometheus client."""

    async def series(
        self, matches: Sequence[str], start: float | None = None, end: float | None = None
    ) -> list[dict[str, str]]: ...


class PrometheusResourceObjects:
    """No-cluster mode: the pods and nodes are those Prometheus has recent series for.

    Each call asks `/api/v1/series` (over the last `lookback` seconds) for `pod_series` or
    `node_series` and collects the distinct (namespace, pod) or node label values. Limitations:
    there is no pod phase (a pod that stopped recently is still listed, and then left out only
    if its queries return nothing); an object's "labels" are the series labels shared by all
    its series (minus `__name__`), not Kubernetes labels, and label selectors apply to those.
    The default selectors (`from_rules`) match every series with those labels, which can be a
    large answer on a big Prometheus; pass narrower ones (e.g. with a `__name__`) if so.
    """

    def __init__(
        self,
        prometheus: SeriesSource,
        *,
        pod_label: str,
        namespace_label: str,
        node_label: str,
        pod_series: Sequence[str],
        node_series: Sequence[str],
        lookback: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._prometheus = prometheus
        self.pod_label = pod_label
        self.namespace_label = namespace_label
        self.node_label = node_label
        self.pod_series = tuple(pod_series)
        self.node_series = tuple(node_series)
        self._lookback = lookback
        self._clock = clock

    @classmethod
    def from_rules(
        cls,
        rules: ResourceMetricRules,
        prometheus: SeriesSource,
        *,
        lookback: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> "PrometheusResourceObjects":
        """Labels from `resourceRules.cpu.resources` (or `.memory`'s where cpu's cannot name
        one); selectors `{<pod>!="",<ns>!=""}` and `{<node>!=""}`. Pods or nodes that neither
        mapping can name are never listed: no query for their metrics could be built."""
        pod = _resource_label(rules, PODS)
        namespace = _resource_label(rules, NAMESPACES)
        node = _resource_label(rules, NODES)
        return cls(
            prometheus,
            pod_label=pod,
            namespace_label=namespace,
            node_label=node,
            pod_series=[f'{{{pod}!="",{namespace}!=""}}'] if pod and namespace else [],
            node_series=[f'{{{node}!=""}}'] if node else [],
            lookback=lookback,
            clock=clock,
        )

    async def _objects(
        self, matches: Sequence[str], namespace_label: str, name_label: str
    ) -> list[ObjectMeta]:
        if not matches:
            return []
        now = self._clock()
        try:
            series = await self._prometheus.series(matches, now - self._lookback, now)
        except PrometheusError as exc:
            log.error("unable to list objects from Prometheus series %s: %s", matches, exc)
            raise UnknownError(f"unable to list objects from Prometheus: {exc}") from None
        shared: dict[tuple[str, str], dict[str, str]] = {}
        for labels in series:
            name = labels.get(name_label, "")
            if not name:
                continue
            key = (labels.get(namespace_label, "") if namespace_label else "", name)
            own = {k: v for k, v in labels.items() if k != "__name__"}
            seen = shared.get(key)
            if seen is None:
                shared[key] = own
            else:
                shared[key] = {k: v for k, v in seen.items() if own.get(k) == v}
        return [ObjectMeta(ns, name, labels) for (ns, name), labels in shared.items()]

    async def pods(
        self, namespace: str, label_selector: Selector, field_selector: FieldSelector
    ) -> list[ObjectMeta]:
        objects = await self._objects(self.pod_series, self.namespace_label, self.pod_label)
        objects = [meta for meta in objects if meta.namespace]
        return _select(objects, namespace, label_selector, field_selector)

    async def nodes(
        self, label_selector: Selector, field_selector: FieldSelector
    ) -> list[ObjectMeta]:
        objects = await self._objects(self.node_series, "", self.node_label)
        return _select(objects, "", label_selector, field_selector)


def _resource_label(rules: ResourceMetricRules, resource: GroupResource) -> str:
    """The label of `resource` in the cpu mapping, else in the memory one, else ""."""
    for rule in (rules.cpu, rules.memory):
        try:
            return rule.converter.label_for_resource(resource)
        except NamingError:
            continue
    return ""


# --- the provider ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContainerMetrics:
    name: str
    cpu: str  # Quantity strings, as served
    memory: str


@dataclass(frozen=True, slots=True)
class NodeMetrics:
    name: str
    labels: Mapping[str, str]
    timestamp: float  # Unix seconds of the earliest sample used
    window: float  # seconds
    cpu: str
    memory: str


@dataclass(frozen=True, slots=True)
class PodMetrics:
    namespace: str
    name: str
    labels: Mapping[str, str]
    timestamp: float
    window: float
    containers: list[ContainerMetrics] = field(default_factory=list)


def _not_found(resource: str, group: str, name: str) -> NotFoundError:
    """apierrors.NewNotFound."""
    qualified = f"{resource}.{group}" if group else resource
    details: dict[str, str] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = resource
    return NotFoundError(f'{qualified} "{name}" not found', details=details)


def node_metrics_not_found(name: str) -> NotFoundError:
    """metrics-server's answer for a node without metrics."""
    return _not_found("nodemetrics", METRICS_GROUP, name)


def pod_metrics_not_found(namespace: str, name: str) -> NotFoundError:
    """metrics-server's answer for a pod without metrics (the name is `<ns>/<name>`)."""
    return _not_found("podmetrics", METRICS_GROUP, f"{namespace}/{name}")


class _QueryFailed(Exception):
    pass


# Samples by object name (the resource label's value), in Prometheus' order.
_ByObject = dict[str, list[Sample]]


class ResourceMetricsProvider:
    def __init__(
        self,
        rules: ResourceMetricRules,
        prometheus: MetricQuerier,
        objects: ResourceObjects,
        clock: Callable[[], float] = time.time,
        *,
        servers: Mapping[str, MetricQuerier] | None = None,
    ) -> None:
        """`servers`: the named backends' queriers, by name, for `resourceRules` that name
        one (`prometheusServer`); `prometheus` serves them otherwise. Read at each query."""
        self.rules = rules
        self._prometheus = prometheus
        self._servers = servers
        self.objects = objects
        self._clock = clock

    @property
    def window(self) -> float:
        return self.rules.window_seconds

    async def _run(
        self,
        now: float,
        rule: ResourceQuery,
        resource: GroupResource,
        namespace: str,
        names: Sequence[str],
    ) -> _ByObject:
        """Go `runQuery`: render, query at `now`, group samples by object (NaN/negative → 0)."""
        try:
            if resource == NODES:
                query = rule.node_query.build("", resource, namespace, names, EVERYTHING)
            else:
                query = rule.container_query.build(
                    "", resource, namespace, names, EVERYTHING, [rule.container_label]
                )
            label = rule.converter.label_for_resource(resource)
        except NamingError as exc:
            raise _QueryFailed(f"unable to construct query: {exc}") from None
        try:
            querier = route(self.rules.prometheus_server, self._prometheus, self._servers)
            result = await querier.query(query, now)
        except PrometheusError as exc:
            raise _QueryFailed(f"unable to execute query: {exc}") from None
        if result.result_type != "vector":
            raise _QueryFailed(
                f"invalid or empty value of non-vector type ({result.result_type}) returned"
            )
        by_object: _ByObject = {}
        for sample in result.samples:
            if math.isnan(sample.value) or sample.value < 0:
                sample = Sample(sample.labels, 0.0, sample.timestamp)
            by_object.setdefault(sample.labels.get(label, ""), []).append(sample)
        return by_object

    async def _both(
        self, now: float, resource: GroupResource, namespace: str, names: Sequence[str]
    ) -> tuple[_ByObject, _ByObject]:
        """Go `queryBoth`: CPU and memory concurrently; either failing fails both."""
        cpu, memory = await asyncio.gather(
            self._run(now, self.rules.cpu, resource, namespace, names),
            self._run(now, self.rules.memory, resource, namespace, names),
            return_exceptions=True,
        )
        # Anything but a query failure (a bug, a cancellation) is not hidden as "no metrics".
        for outcome in (cpu, memory):
            if isinstance(outcome, BaseException) and not isinstance(outcome, _QueryFailed):
                raise outcome
        if isinstance(cpu, BaseException):
            raise _QueryFailed(f"unable to fetch CPU metrics: {cpu}") from cpu
        if isinstance(memory, BaseException):
            raise _QueryFailed(f"unable to fetch memory metrics: {memory}") from memory
        return cpu, memory

    # nodes

    async def metrics_for_nodes(self, nodes: Sequence[ObjectMeta]) -> list[NodeMetrics]:
        """Go `GetNodeMetrics` for these nodes, sorted by name."""
        if not nodes:
            return []
        names = [node.name for node in nodes]
        try:
            cpu, memory = await self._both(self._clock(), NODES, "", names)
        except _QueryFailed as exc:
            log.error("failed querying node metrics: %s", exc)
            return []
        results: list[NodeMetrics] = []
        for node in nodes:
            cpu_samples, memory_samples = cpu.get(node.name), memory.get(node.name)
            if not cpu_samples:
                log.info("missing CPU for node %r, skipping", node.name)
                continue
            if not memory_samples:
                log.info("missing memory for node %r, skipping", node.name)
                continue
            # As Go: the first sample for the node.
            raw_cpu, raw_memory = cpu_samples[0], memory_samples[0]
            results.append(
                NodeMetrics(
                    name=node.name,
                    labels=node.labels,
                    timestamp=min(raw_cpu.timestamp, raw_memory.timestamp),
                    window=self.window,
                    cpu=decimal_si_quantity(raw_cpu.value),
                    memory=binary_si_quantity(raw_memory.value),
                )
            )
        results.sort(key=lambda m: m.name)
        return results

    async def node_metrics(
        self,
        names: Sequence[str] | None = None,
        label_selector: Selector = EVERYTHING,
        field_selector: FieldSelector = EVERY_FIELD,
    ) -> list[NodeMetrics]:
        """Metrics of the nodes matching the selectors (and, if given, named in `names`)."""
        nodes = await self.objects.nodes(label_selector, field_selector)
        if names is not None:
            wanted = set(names)
            nodes = [node for node in nodes if node.name in wanted]
        return await self.metrics_for_nodes(nodes)

    async def get_node_metrics(self, name: str) -> NodeMetrics:
        """One node, or the 404 metrics-server gives (node unknown, or without metrics)."""
        nodes = await self.objects.nodes(
            EVERYTHING, FieldSelector((FieldRequirement("metadata.name", True, name),))
        )
        if not nodes:
            # The node lister's error, passed through unchanged by metrics-server.
            raise _not_found("node", "", name)
        found = await self.metrics_for_nodes(nodes[:1])
        if not found:
            raise node_metrics_not_found(name)
        return found[0]

    # pods

    async def _namespace(
        self, now: float, namespace: str, names: Sequence[str]
    ) -> tuple[_ByObject, _ByObject] | None:
        try:
            return await self._both(now, PODS, namespace, names)
        except _QueryFailed as exc:
            log.error(
                "unable to fetch metrics for pods in namespace %r, skipping: %s", namespace, exc
            )
            return None

    def _assign(self, pod: ObjectMeta, cpu: _ByObject, memory: _ByObject) -> PodMetrics | None:
        """Go `assignForPod`."""
        cpu_samples, memory_samples = cpu.get(pod.name), memory.get(pod.name)
        if cpu_samples is None:
            log.error(
                "unable to fetch CPU metrics for pod %s/%s, skipping", pod.namespace, pod.name
            )
            return None
        if memory_samples is None:
            log.error(
                "unable to fetch memory metrics for pod %s/%s, skipping", pod.namespace, pod.name
            )
            return None
        cpu_by_container: dict[str, str] = {}
        memory_by_container: dict[str, str] = {}
        earliest = math.inf
        # Several samples for one container: the last wins, as Go's map assignment.
        for sample in cpu_samples:
            name = sample.labels.get(self.rules.cpu.container_label, "")
            cpu_by_container[name] = decimal_si_quantity(sample.value)
            earliest = min(earliest, sample.timestamp)
        for sample in memory_samples:
            name = sample.labels.get(self.rules.memory.container_label, "")
            memory_by_container[name] = binary_si_quantity(sample.value)
            earliest = min(earliest, sample.timestamp)
        # Go's order is map iteration (random); sorted by name is stable for clients and tests.
        containers = [
            ContainerMetrics(
                name, cpu_by_container.get(name, "0"), memory_by_container.get(name, "0")
            )
            for name in sorted(cpu_by_container.keys() | memory_by_container.keys())
        ]
        if math.isinf(earliest):
            # Both results present but empty lists cannot happen; keep the type total.
            earliest = self._clock()
        return PodMetrics(
            namespace=pod.namespace,
            name=pod.name,
            labels=pod.labels,
            timestamp=earliest,
            window=self.window,
            containers=containers,
        )

    async def metrics_for_pods(self, pods: Sequence[ObjectMeta]) -> list[PodMetrics]:
        """Go `GetPodMetrics` for these pods, sorted by namespace then name."""
        if not pods:
            return []
        ordered = sorted(pods, key=lambda p: (p.namespace, p.name))
        by_namespace: dict[str, list[str]] = {}
        for pod in ordered:
            by_namespace.setdefault(pod.namespace, []).append(pod.name)
        now = self._clock()
        namespaces = list(by_namespace)
        answers = await asyncio.gather(
            *(self._namespace(now, ns, by_namespace[ns]) for ns in namespaces)
        )
        results = dict(zip(namespaces, answers, strict=True))
        metrics: list[PodMetrics] = []
        for pod in ordered:
            answer = results[pod.namespace]
            if answer is None:
                continue
            assigned = self._assign(pod, *answer)
            if assigned is not None:
                metrics.append(assigned)
        return metrics

    async def pod_metrics(
        self,
        namespace: str,
        name: str | None = None,
        label_selector: Selector = EVERYTHING,
        field_selector: FieldSelector = EVERY_FIELD,
    ) -> list[PodMetrics]:
        """Metrics of the Running pods of `namespace` ("" = all) matching the selectors (and
        named `name`, if given)."""
        pods = await self.objects.pods(namespace, label_selector, field_selector)
        if name is not None:
            pods = [pod for pod in pods if pod.name == name]
        return await self.metrics_for_pods(pods)

    async def get_pod_metrics(self, namespace: str, name: str) -> PodMetrics:
        """One pod, or the 404 metrics-server gives (pod not Running/unknown, or no metrics)."""
        pods = await self.objects.pods(
            namespace, EVERYTHING, FieldSelector((FieldRequirement("metadata.name", True, name),))
        )
        if not pods:
            # The pod metadata lister's error, passed through unchanged by metrics-server.
            raise _not_found("pods", "", name)
        found = await self.metrics_for_pods(pods[:1])
        if not found:
            raise pod_metrics_not_found(namespace, name)
        return found[0]
