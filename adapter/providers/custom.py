"""custom.metrics.k8s.io: a metric of one object, or of every object matching a selector.

Port of the Go adapter's `pkg/custom-provider/provider.go`. The request's resource is
normalised through the REST mapper and looked up in the registry; the rule renders the PromQL;
Prometheus answers an instant vector whose samples are matched to objects by the resource's
label. Status codes and messages are the Go adapter's: an unknown metric, or a query the rule
cannot build, is a 404; a Prometheus failure is a 500 "unable to fetch metrics". A rule that
can never build a query (an empty `metricsQuery`) gets Go's 404 with the reason appended.

Not in the Go adapter: with `namespace_query_ttl` (`--namespace-query-ttl`), a request on
objects of a namespace is answered from a shared namespace-wide query when the rule's query
is per object (see `adapter.providers.shared_queries`). A `*` request whose object matcher
would exceed `max_matcher_length`
(`--prometheus-max-matcher-length`) is sent as several queries over chunks of the names, run
4 at a time at one evaluation time, and merged by the object label. This equals the single
query for templates that aggregate per object (`sum(...) by (<<.GroupBy>>)`); a template
with no `by (...)` naming the object label is sent whole instead (see `_chunked_queries`).
"""

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from adapter.apimachinery.labels import Selector, SelectorError, to_label_selector
from adapter.apimachinery.quantity import decimal_si_quantity
from adapter.discovery.registry import CustomMetricInfo, MetricRegistry, SeriesInfo
from adapter.errors import InternalError, NotFoundError, UnknownError, metric_not_found
from adapter.kube.rest_mapper import GroupResource, NoResourceMatchError, RESTMapper
from adapter.naming.errors import NamingError, UnusableQueryError
from adapter.prometheus.client import QueryResult
from adapter.providers.chunking import chunk_names
from adapter.providers.objects import ObjectLister, ObjectListError
from adapter.providers.querier import MetricQuerier, object_values, query_or_500, route
from adapter.providers.shared_queries import NamespaceQueries, sharing_problem

__all__ = ["CustomMetricsProvider", "MetricValue", "ObjectReference"]

log = logging.getLogger(__name__)

# How many chunk queries of one request run at once: enough to hide latency, few enough not
# to flood Prometheus with one HPA request.
_CHUNK_CONCURRENCY = 4
# `by (a, b)` or `by(a,b)`, either side of the aggregation's argument; PromQL keywords are
# case-insensitive.
_GROUP_BY = re.compile(r"\bby\s*\(([^)]*)\)", re.IGNORECASE)


def _query_not_built(resource: GroupResource, metric: str, error: NamingError) -> NotFoundError:
    """The Go registry's answer when it cannot build a query: "not found". When the rule can
    never build one, the message says why (the rule's path, never PromQL)."""
    not_found = metric_not_found(resource, metric)
    if isinstance(error, UnusableQueryError):
        return NotFoundError(f"{not_found.message}: {error}")
    return not_found


def _groups_by(query: str, label: str) -> bool:
    """Whether `query` has a `by (...)` clause naming `label`."""
    return any(
        label in (part.strip() for part in match.group(1).split(","))
        for match in _GROUP_BY.finditer(query)
    )


class ObjectReference(NamedTuple):
    # NamedTuples: a `*` request makes one of each per object, and a frozen dataclass costs
    # several times more to build.
    kind: str
    name: str
    namespace: str
    api_version: str

    def as_json(self) -> dict[str, str]:
        ref = {"kind": self.kind}
        if self.namespace:
            ref["namespace"] = self.namespace
        ref["name"] = self.name
        ref["apiVersion"] = self.api_version
        return ref


class MetricValue(NamedTuple):
    described_object: ObjectReference
    metric: str
    timestamp: float
    value: str
    selector: dict[str, Any] | None


class CustomMetricsProvider:
    def __init__(
        self,
        registry: Callable[[], MetricRegistry],
        prometheus: MetricQuerier,
        objects: ObjectLister,
        mapper: RESTMapper,
        clock: Callable[[], float] = time.time,
        *,
        max_matcher_length: int = 0,
        namespace_query_ttl: float = 0.0,
        servers: Mapping[str, MetricQuerier] | None = None,
    ) -> None:
        """`max_matcher_length`: longest object matcher value (quoted alternation of names)
        of one query before a `*` request is split into several queries; 0 never splits.
        `namespace_query_ttl`: when positive, how long a shared namespace-wide result is
        used; 0 queries per request. `servers`: the queriers of the named backends
        (`prometheusServers`), by name, for rules that name one; `prometheus` serves the
        others. The mapping is read at each request, so its owner may change it (a reload)."""
        self._registry = registry
        self._prometheus = prometheus
        self._servers = servers
        self._namespace_query_ttl = namespace_query_ttl
        # Named backends' shared namespace-wide queries: name -> (querier, its queries).
        self._shared_named: dict[str, tuple[MetricQuerier, NamespaceQueries]] = {}
        self._objects = objects
        self._mapper = mapper
        self._clock = clock
        self._max_matcher_length = max_matcher_length
        self._unsplittable_warned: set[str] = set()
        self._shared = (
            NamespaceQueries(prometheus, namespace_query_ttl) if namespace_query_ttl > 0 else None
        )
        # (template source, object label) -> why it cannot be shared, or None if it can
        self._shared_problems: dict[tuple[str, str], str | None] = {}

    def list_all_metrics(self) -> list[CustomMetricInfo]:
        return sorted(self._registry().custom, key=lambda i: (str(i.group_resource), i.metric))

    def _normalise(self, resource: GroupResource) -> GroupResource:
        try:
            return self._mapper.resource_for(resource).group_resource
        except NoResourceMatchError:
            # Unknown to the mapper (a custom resource in no-cluster mode): as written.
            return GroupResource(resource.group, resource.resource.lower())

    def _lookup(
        self, resource: GroupResource, namespaced: bool, metric: str
    ) -> tuple[GroupResource, SeriesInfo]:
        normalised = self._normalise(resource)
        found = self._registry().lookup_custom(CustomMetricInfo(normalised, namespaced, metric))
        if found is None:
            raise metric_not_found(resource, metric)
        return normalised, found

    def _reference(self, resource: GroupResource, namespace: str, name: str) -> ObjectReference:
        try:
            info = self._mapper.resource_for(resource)
            kind, api_version = info.kind, info.api_version
        except NoResourceMatchError:
            # No-cluster mode and a resource the built-in table lacks: the best guess.
            singular = resource.resource.removesuffix("s")
            kind, api_version = singular[:1].upper() + singular[1:], f"{resource.group}/v1"
        return ObjectReference(kind, name, namespace, api_version)

    async def _query(
        self,
        resource: GroupResource,
        request_resource: GroupResource,
        namespace: str,
        names: Sequence[str],
        series: SeriesInfo,
        metric: str,
        metric_selector: Selector,
    ) -> dict[str, float]:
        """Run the rule's query for `names`; returns value by object name (last sample wins).

        Names whose object matcher would exceed `max_matcher_length` are queried in chunks
        (see `_chunked_queries`); the values are merged, the first value of an object kept.
        """
        rule = series.rule
        querier = route(rule.source.prometheus_server, self._prometheus, self._servers)
        try:
            label = rule.converter.label_for_resource(resource)
            shared = self._shared_query(series, resource, namespace, label, metric_selector)
            if shared is None:
                queries = self._chunked_queries(series, resource, namespace, names, metric_selector)
        except NamingError as exc:
            # The Go registry logs this and answers "not found".
            log.error("unable to construct query for metric %s/%s: %s", resource, metric, exc)
            raise _query_not_built(request_resource, metric, exc) from None
        if shared is not None:
            namespace_queries = self._namespace_queries(querier, rule.source.prometheus_server)
            everything = await namespace_queries.values(shared, label)
            return {name: everything[name] for name in names if name in everything}
        # Every chunk is evaluated at the same instant, as one query would be.
        at = self._clock() if len(queries) > 1 else None
        results = await self._run_queries(querier, queries, at)
        values: dict[str, float] = {}
        for query, result in zip(queries, results, strict=True):
            for name, value in object_values(result, label, query).items():
                values.setdefault(name, value)
        return values

    def _namespace_queries(self, querier: MetricQuerier, server: str) -> NamespaceQueries:
        """The shared namespace-wide queries of the backend whose querier is `querier`."""
        if querier is self._prometheus:
            assert self._shared is not None
            return self._shared
        known = self._shared_named.get(server)
        if known is None or known[0] is not querier:  # new, or replaced by a reload
            known = (querier, NamespaceQueries(querier, self._namespace_query_ttl))
            self._shared_named[server] = known
        return known[1]

    def _shared_query(
        self,
        series: SeriesInfo,
        resource: GroupResource,
        namespace: str,
        label: str,
        metric_selector: Selector,
    ) -> str | None:
        """The namespace-wide query for this request, or None when it is to be queried on
        its own (the mode is off, the request is not namespaced, or the rule's query is not
        per object: then a warning says why, once per rule and label)."""
        if self._shared is None or not namespace:
            return None
        source = series.rule.query.template.source
        key = (source, label)
        if self._shared_problems.get(key) is not None:
            return None  # known not to be shared: no need to render the query
        try:
            query = series.rule.query.build(
                series.series_name, resource, namespace, None, metric_selector
            )
        except NamingError as exc:
            # A template may fail without object names where per-object queries render.
            problem: str | None = f"the namespace-wide query cannot be rendered: {exc}"
        else:
            if key in self._shared_problems:
                return query  # checked before: shared
            problem = sharing_problem(source, query, label)
        self._shared_problems[key] = problem
        if problem is None:
            return query
        log.warning(
            "%s: querying per request, not namespace-wide (--namespace-query-ttl), "
            "for metrics on %s: %s",
            series.rule.path,
            resource,
            problem,
        )
        return None

    def _chunked_queries(
        self,
        series: SeriesInfo,
        resource: GroupResource,
        namespace: str,
        names: Sequence[str],
        metric_selector: Selector,
    ) -> list[str]:
        """The query, or one query per chunk of names when the object matcher is too long.

        Each chunk's query is the rule's template rendered for that chunk, so splitting gives
        the same per-object values only when the template aggregates per object
        (`sum(...) by (<<.GroupBy>>)`). A rendered query without a `by (...)` naming the
        object label (a `count(...)` over every object, say) is not split: it goes as one
        query (sent as POST when long), with a warning once per rule.
        """
        rule = series.rule
        build = rule.query.build
        chunks = chunk_names(names, self._max_matcher_length)
        if len(chunks) <= 1:
            return [build(series.series_name, resource, namespace, names, metric_selector)]
        queries = [
            build(series.series_name, resource, namespace, chunk, metric_selector)
            for chunk in chunks
        ]
        label = rule.converter.label_for_resource(resource)
        if _groups_by(queries[0], label):
            return queries
        source = rule.query.template.source
        if source not in self._unsplittable_warned:
            self._unsplittable_warned.add(source)
            log.warning(
                "sending one query for %d %s instead of %d chunks: metricsQuery %r does not "
                "aggregate by (%s), so per-chunk results could differ from the whole",
                len(names),
                resource,
                len(chunks),
                source,
                label,
            )
        return [build(series.series_name, resource, namespace, names, metric_selector)]

    async def _run_queries(
        self, querier: MetricQuerier, queries: Sequence[str], at: float | None
    ) -> list[QueryResult]:
        """Run `queries` at most `_CHUNK_CONCURRENCY` at a time; the first failure cancels the
        rest and is an InternalError, as for a single query."""
        limit = asyncio.Semaphore(_CHUNK_CONCURRENCY)

        async def run(query: str) -> QueryResult:
            async with limit:
                return await query_or_500(querier, query, at)

        if len(queries) == 1:
            return [await run(queries[0])]
        tasks = [asyncio.ensure_future(run(query)) for query in queries]
        try:
            return await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            # Collects the cancelled (or also failed) siblings, so none goes unretrieved.
            await asyncio.gather(*tasks, return_exceptions=True)

    def _values(
        self,
        resource: GroupResource,
        namespace: str,
        names: Sequence[str],
        metric: str,
        values: dict[str, float],
        metric_selector: Selector,
    ) -> list[MetricValue]:
        """One MetricValue per name that has a value, in `names` order."""
        selector = None
        if not metric_selector.empty():
            try:
                # Go fails the request (500) on `!=`, which a LabelSelector cannot store,
                # although its PromQL worked; the equivalent `notin` is echoed instead.
                selector = to_label_selector(metric_selector, not_equals_as_not_in=True)
            except SelectorError as exc:
                # Gt/Lt: the server refuses them before querying; other callers get Go's 500.
                raise UnknownError(str(exc)) from None
        now = self._clock()
        kind, _, _, api_version = self._reference(resource, namespace, "")
        return [
            MetricValue(
                ObjectReference(kind, name, namespace, api_version),
                metric,
                now,
                decimal_si_quantity(values[name]),
                selector,
            )
            for name in names
            if name in values
        ]

    async def get_metric_by_name(
        self,
        resource: GroupResource,
        namespace: str,
        name: str,
        metric: str,
        metric_selector: Selector,
    ) -> MetricValue:
        normalised, series = self._lookup(resource, bool(namespace), metric)
        values = await self._query(
            normalised, resource, namespace, [name], series, metric, metric_selector
        )
        if name not in values:
            raise metric_not_found(resource, metric, name)
        return self._values(normalised, namespace, [name], metric, values, metric_selector)[0]

    async def get_metric_by_selector(
        self,
        resource: GroupResource,
        namespace: str,
        selector: Selector,
        metric: str,
        metric_selector: Selector,
    ) -> list[MetricValue]:
        normalised, series = self._lookup(resource, bool(namespace), metric)
        try:
            names = await self._objects.list_names(normalised, namespace, selector, series)
        except ObjectListError as exc:
            log.error("unable to list matching resource names: %s", exc)
            raise InternalError("unable to list matching resources") from None
        if not names:
            # The Go registry refuses to build a query for no objects.
            raise metric_not_found(resource, metric)
        values = await self._query(
            normalised, resource, namespace, names, series, metric, metric_selector
        )
        return self._values(normalised, namespace, names, metric, values, metric_selector)
