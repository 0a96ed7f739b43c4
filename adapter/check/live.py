"""`check-config --prometheus-url`: what a config does with the series a real Prometheus has.

For each rule: the series its `seriesQuery` finds, which the filters keep and drop (and which
filter dropped each), the metrics and resources that result, resources reached only through a
`<<.Resource>>` template that few expect (a `job` label → jobs.batch, Go #21), and metrics that
several rules (or series) define, with the one that wins as in Go (the last). `--explain` runs
one request through the server's own providers, recording the PromQL, Prometheus' answer and
the exact JSON (or Status) the API returns. Everything is plain data for the text and JSON
renderers in `adapter.check.report`.
"""

import asyncio
import contextlib
import difflib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from yarl import URL

from adapter.discovery.registry import (
    CustomMetricInfo,
    MetricRegistry,
    SeriesKey,
    SeriesShape,
    build_registry,
    key_query,
    key_server,
    series_key,
)
from adapter.errors import APIError
from adapter.golang.duration import format_go_duration
from adapter.kube.rest_mapper import (
    BUILTIN_RESOURCES,
    NAMESPACES,
    NODES,
    PODS,
    GroupResource,
    NoResourceMatchError,
    RESTMapper,
    StaticRESTMapper,
)
from adapter.naming.errors import NamingError
from adapter.naming.rules import CompiledConfig, MetricRule
from adapter.naming.series_filter import SeriesFilter
from adapter.prometheus.backends import (
    DEFAULT_SERVER,
    ServerClients,
    build_clients,
    client_for_rule,
    server_url,
)
from adapter.prometheus.client import PrometheusClient, PrometheusConfig, PrometheusError
from adapter.prometheus.results import QueryResult
from adapter.prometheus.transport import display_url
from adapter.providers.custom import CustomMetricsProvider
from adapter.providers.external import ExternalMetricsProvider
from adapter.providers.objects import ObjectLister, PrometheusObjectLister
from adapter.server.metrics_api import parse_selector_param
from adapter.server.responses import custom_metric_list, external_metric_list

__all__ = [
    "Discovery",
    "ExplainRequest",
    "LiveOptions",
    "PrometheusUnreachableError",
    "RecordingClient",
    "backend_clients",
    "captured_provider_logs",
    "client_for_rule",
    "discover",
    "explain",
    "live_report",
    "live_warnings",
    "rules_live",
    "run_live",
]

EXAMPLES = 5
_UNSURPRISING = frozenset({PODS, NAMESPACES, NODES})


@dataclass(frozen=True, slots=True)
class ExplainRequest:
    """One API request to explain: `pods/http_requests` (custom) or a metric name (external)."""

    target: str
    external: bool = False
    namespace: str = ""
    name: str = ""  # "" or "*": every object (the selector applies)
    selector: str = ""
    metric_selector: str = ""
    version: str = "v1beta2"


@dataclass(frozen=True, slots=True)
class LiveOptions:
    max_age: float
    explain: ExplainRequest | None = None
    clock: Callable[[], float] = time.time


class PrometheusUnreachableError(Exception):
    """Prometheus could not be asked at all (connection, TLS, timeout, or every query failed)."""

    def __init__(self, url: str, error: object, server: str = DEFAULT_SERVER) -> None:
        named = "" if server == DEFAULT_SERVER else f"server {server!r} "
        super().__init__(f"cannot reach Prometheus {named}at {url}: {error}")


def _format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(value)
    return text.removesuffix(".0")


def _samples(result: QueryResult) -> list[dict[str, Any]]:
    return [
        {"labels": dict(s.labels), "value": _format_value(s.value), "timestamp": s.timestamp}
        for s in result.samples
    ]


# --- discovery ----------------------------------------------------------------------------


async def _list_series(
    client: PrometheusClient,
    url: str,
    queries: Sequence[str],
    start: float,
    server: str = DEFAULT_SERVER,
) -> dict[str, list[dict[str, str]] | PrometheusError]:
    """Each distinct seriesQuery once, in parallel, as a relist does."""
    if not queries:
        # Nothing to list, but the user asked for a live check: make sure Prometheus answers.
        try:
            await client.query("1")
        except PrometheusError as exc:
            raise PrometheusUnreachableError(url, exc, server) from None
        return {}
    results = await asyncio.gather(
        *(client.series([q], start=start) for q in queries), return_exceptions=True
    )
    listed: dict[str, list[dict[str, str]] | PrometheusError] = {}
    for query, result in zip(queries, results, strict=True):
        if isinstance(result, PrometheusError):
            # No HTTP answer at all is an unreachable Prometheus, not a bad seriesQuery.
            if result.status is None:
                raise PrometheusUnreachableError(url, result, server)
            listed[query] = result
        elif isinstance(result, BaseException):
            raise result
        else:
            listed[query] = result
    errors = [r for r in listed.values() if isinstance(r, PrometheusError)]
    if len(errors) == len(queries):
        raise PrometheusUnreachableError(url, errors[0], server)
    return listed


def _filter_text(rule: MetricRule, failing: SeriesFilter) -> str:
    implied = rule.source.name.matches and failing is rule.filters[-1]
    return failing.describe() + (" (from name.matches)" if implied else "")


def _named(rule: MetricRule, shapes: Sequence[SeriesShape]) -> Iterator[tuple[SeriesShape, str]]:
    """The shapes a rule keeps, with their metric names (as the registry builds them)."""
    for shape in shapes:
        if rule.keeps(shape.name):
            with contextlib.suppress(NamingError):
                yield shape, rule.namer.metric_name_for_series(shape.name)


def _filters(rule: MetricRule, names: Sequence[str]) -> dict[str, Any]:
    kept: list[str] = []
    dropped: list[dict[str, str]] = []
    for name in names:
        failing = next((f for f in rule.filters if not f.matches(name)), None)
        if failing is not None:
            dropped.append({"series": name, "filter": _filter_text(rule, failing)})
            continue
        try:
            rule.namer.metric_name_for_series(name)
        except NamingError as exc:
            dropped.append({"series": name, "filter": f"name: {exc}"})
            continue
        kept.append(name)
    return {
        "kept": {"count": len(kept), "examples": kept[:EXAMPLES]},
        "dropped": {"count": len(dropped), "examples": dropped[:EXAMPLES]},
    }


def _custom_metrics(rule: MetricRule, query: str, shapes: Sequence[SeriesShape]) -> list[Any]:
    registry = build_registry([rule], [], {query: shapes})
    by_name: dict[str, dict[str, Any]] = {}
    for info, series in sorted(registry.custom.items(), key=lambda kv: (kv[0].metric, str(kv[0]))):
        entry = by_name.setdefault(
            info.metric, {"name": info.metric, "series": series.series_name, "resources": []}
        )
        entry["resources"].append(
            {"resource": str(info.group_resource), "namespaced": info.namespaced}
        )
    return list(by_name.values())


def _external_metrics(rule: MetricRule, query: str, shapes: Sequence[SeriesShape]) -> list[Any]:
    registry = build_registry([], [rule], {query: shapes})
    return [
        {
            "name": name,
            "series": info.series_name,
            "external": True,
            "namespaced": rule.query.namespaced,
        }
        for name, info in sorted(registry.external.items())
    ]


def _surprising(rule: MetricRule, shapes: Sequence[SeriesShape]) -> list[dict[str, Any]]:
    """Resources reached only through the template, other than pods, namespaces and nodes."""
    converter = rule.converter
    if converter.template is None:
        return []
    expected = _UNSURPRISING | set(converter.overrides.values())
    found: dict[tuple[str, str], list[str]] = {}
    for shape, metric in _named(rule, shapes):
        for label in sorted(shape.labels):
            resource = converter.resource_for_label(label)
            if resource is None or resource in expected or label in converter.overrides:
                continue
            metrics = found.setdefault((str(resource), label), [])
            if metric not in metrics:
                metrics.append(metric)
    return [
        {
            "resource": resource,
            "label": label,
            "count": len(metrics),
            "metrics": metrics[:EXAMPLES],
            "why": f"the label {label!r} matches the template {converter.template.source!r} "
            f"and names {resource}",
        }
        for (resource, label), metrics in sorted(found.items())
    ]


def _rule_live(
    rule: MetricRule,
    listed: Mapping[SeriesKey, list[dict[str, str]] | PrometheusError],
    named: bool = False,
) -> dict[str, Any]:
    report: dict[str, Any] = {"path": rule.path, "seriesQuery": rule.series_query}
    if named:  # the config names backends: say which one each rule uses
        report["prometheusServer"] = rule.prometheus_server
    found = listed.get(series_key(rule))
    if isinstance(found, PrometheusError) or found is None:
        report["error"] = str(found) if found is not None else "not listed"
        report.update(series=None, filters=None, metrics=[], surprising=[])
        return report
    shapes = sorted(
        {SeriesShape.from_labels(labels) for labels in found},
        key=lambda s: (s.name, sorted(s.labels)),
    )
    names = sorted({s.name for s in shapes})
    report["series"] = {
        "count": len(found),
        "names": len(names),
        "examples": [{"name": s.name, "labels": sorted(s.labels)} for s in shapes[:EXAMPLES]],
    }
    report["filters"] = _filters(rule, names)
    if rule.kind == "rules":
        report["metrics"] = _custom_metrics(rule, rule.series_query, shapes)
        report["surprising"] = _surprising(rule, shapes)
    else:
        report["metrics"] = _external_metrics(rule, rule.series_query, shapes)
        report["surprising"] = []
    return report


def _collisions(
    compiled: CompiledConfig,
    shapes: Mapping[SeriesKey, Sequence[SeriesShape]],
    registry: MetricRegistry,
) -> list[dict[str, Any]]:
    """Metrics that more than one (rule, series) defines; the registry keeps the last. When
    the config names backends, each producer and the winner name theirs."""
    named = bool(compiled.config.prometheus_servers)
    producers: dict[tuple[str, str], list[tuple[str, str]]] = {}
    rule_of: dict[str, MetricRule] = {}

    def produced(api: str, key: str, rule: MetricRule, series: str) -> None:
        entries = producers.setdefault((api, key), [])
        rule_of[rule.path] = rule
        if (rule.path, series) not in entries:
            entries.append((rule.path, series))

    def entry(path: str, series: str) -> dict[str, str]:
        found: dict[str, str] = {"rule": path, "series": series}
        if named:
            found["prometheusServer"] = rule_of[path].prometheus_server
        return found

    for rule in compiled.rules:
        for shape, metric in _named(rule, shapes.get(series_key(rule), ())):
            for resource in rule.converter.resources_for_series(sorted(shape.labels)):
                info = CustomMetricInfo(resource, rule.converter.is_namespaced(resource), metric)
                produced("custom", str(info), rule, shape.name)
    for rule in compiled.external_rules:
        for shape, metric in _named(rule, shapes.get(series_key(rule), ())):
            produced("external", metric, rule, shape.name)
    winners = {("custom", str(k)): v for k, v in registry.custom.items()}
    winners.update({("external", k): v for k, v in registry.external.items()})
    out = []
    for (api, key), entries in sorted(producers.items()):
        if len(entries) < 2:
            continue
        winner = winners[(api, key)]
        rules = {path for path, _ in entries}
        rule_of[winner.rule.path] = winner.rule
        out.append(
            {
                "api": api,
                "metric": key,
                "producers": [entry(p, s) for p, s in entries],
                "winner": entry(winner.rule.path, winner.series_name),
                "between": "rules" if len(rules) > 1 else "series of one rule",
            }
        )
    return out


def live_warnings(rules: Sequence[dict[str, Any]], window: str) -> list[str]:
    """One line per rule that defines nothing, saying why."""
    warnings = []
    for rule in rules:
        path = rule["path"]
        if rule.get("error"):
            warnings.append(f"{path}: Prometheus rejected the seriesQuery: {rule['error']}")
        elif rule["series"]["count"] == 0:
            warnings.append(f"{path}: the seriesQuery found no series in the last {window}")
        elif rule["filters"]["kept"]["count"] == 0:
            warnings.append(f"{path}: the filters drop all {rule['series']['names']} series names")
        elif not rule["metrics"]:
            warnings.append(
                f"{path}: no kept series has a label that maps to a resource, so the rule "
                "defines no metrics"
            )
    return warnings


def _query_entry(
    key: SeriesKey, found: list[dict[str, str]] | PrometheusError, named: bool = False
) -> dict[str, Any]:
    entry: dict[str, Any] = {"seriesQuery": key_query(key)}
    if named:
        entry["prometheusServer"] = key_server(key)
    if isinstance(found, PrometheusError):
        return {**entry, "series": None, "error": str(found)}
    return {**entry, "series": len(found), "error": None}


async def _list_every_backend(
    keys: Sequence[SeriesKey],
    client: PrometheusClient,
    url: str,
    servers: Mapping[str, tuple[PrometheusClient, str]],
    start: float,
) -> dict[SeriesKey, list[dict[str, str]] | PrometheusError]:
    """Each backend's series queries on it, the backends in parallel: the command line's
    always (it was asked for), each named one that a rule uses."""
    by_server: dict[str, list[str]] = {DEFAULT_SERVER: []}
    for key in keys:
        by_server.setdefault(key_server(key), []).append(key_query(key))
    names = list(by_server)
    listings = await asyncio.gather(
        *(
            _list_series(
                *((client, url) if name == DEFAULT_SERVER else servers[name]),
                by_server[name],
                start,
                name,
            )
            for name in names
        )
    )
    listed: dict[SeriesKey, list[dict[str, str]] | PrometheusError] = {}
    for name, found in zip(names, listings, strict=True):
        for query, result in found.items():
            listed[query if name == DEFAULT_SERVER else (name, query)] = result
    return listed


@dataclass(frozen=True, slots=True)
class Discovery:
    """What a relist finds: each series key's answer, the series shapes, the registry."""

    keys: list[SeriesKey]
    listed: dict[SeriesKey, list[dict[str, str]] | PrometheusError]
    shapes: dict[SeriesKey, list[SeriesShape]]
    registry: MetricRegistry


async def discover(
    compiled: CompiledConfig,
    client: PrometheusClient,
    url: str,
    options: LiveOptions,
    *,
    servers: Mapping[str, tuple[PrometheusClient, str]] | None = None,
) -> Discovery:
    """List every rule's series as a relist does, each on its backend (raises
    PrometheusUnreachableError). `client` (at `url`) is the command-line backend's;
    `servers` holds the client and shown URL of each `prometheusServers` entry, by name."""
    rules = (*compiled.rules, *compiled.external_rules)
    keys = list(dict.fromkeys(series_key(r) for r in rules))
    start = options.clock() - options.max_age
    listed = await _list_every_backend(keys, client, url, servers or {}, start)
    shapes: dict[SeriesKey, list[SeriesShape]] = {
        q: sorted(
            {SeriesShape.from_labels(labels) for labels in found},
            key=lambda s: (s.name, sorted(s.labels)),
        )
        for q, found in listed.items()
        if not isinstance(found, PrometheusError)
    }
    registry = build_registry(compiled.rules, compiled.external_rules, shapes)
    return Discovery(keys, listed, shapes, registry)


def rules_live(compiled: CompiledConfig, found: Discovery) -> list[dict[str, Any]]:
    """_rule_live for every rule, custom then external."""
    named = bool(compiled.config.prometheus_servers)
    return [_rule_live(r, found.listed, named) for r in (*compiled.rules, *compiled.external_rules)]


async def live_report(
    compiled: CompiledConfig,
    client: PrometheusClient,
    url: str,
    options: LiveOptions,
    *,
    servers: Mapping[str, tuple[PrometheusClient, str]] | None = None,
) -> dict[str, Any]:
    """The live part of the report for one config (raises PrometheusUnreachableError); the
    backends as for `discover`."""
    servers = servers or {}
    named = bool(compiled.config.prometheus_servers)
    found = await discover(compiled, client, url, options, servers=servers)
    registry = found.registry
    custom = [_rule_live(r, found.listed, named) for r in compiled.rules]
    external = [_rule_live(r, found.listed, named) for r in compiled.external_rules]
    window = format_go_duration(options.max_age)
    report: dict[str, Any] = {
        "prometheus": url,
        "maxAge": window,
        "queries": [_query_entry(k, found.listed[k], named) for k in found.keys],
        "rules": custom,
        "externalRules": external,
        "advertised": {
            "custom": sorted(str(i) for i in registry.custom),
            "external": sorted(registry.external),
        },
        "collisions": _collisions(compiled, found.shapes, registry),
        "warnings": live_warnings([*custom, *external], window),
        "explain": None,
    }
    if named:
        report["prometheusServers"] = {
            DEFAULT_SERVER: url,
            **{name: shown for name, (_, shown) in servers.items()},
        }
    if options.explain is not None:
        clients = {name: found for name, (found, _) in servers.items()}
        report["explain"] = await explain(
            options.explain, registry, client, options, servers=clients
        )
    return report


@contextlib.asynccontextmanager
async def backend_clients(
    compiled: CompiledConfig, prometheus: PrometheusConfig
) -> AsyncIterator[dict[str, tuple[PrometheusClient, str]]]:
    """A client for each of the config's `prometheusServers`, by name, with the URL to show;
    closed on the way out. Raises ConfigError when one cannot be made."""
    named: ServerClients = {}
    try:
        named, _ = await build_clients(
            compiled.config.prometheus_servers, prometheus, file=compiled.file
        )
        yield {name: (found, server_url(server.url)) for name, (server, found) in named.items()}
    finally:
        for _, found in named.values():
            await found.close()


async def run_live(
    configs: Sequence[CompiledConfig], prometheus: PrometheusConfig, options: LiveOptions
) -> list[dict[str, Any]]:
    """One Prometheus client for the run (the command line's), and for each config one per
    `prometheusServers` entry (raises ConfigError when one cannot be made); a live report per
    config."""
    url = display_url(URL(prometheus.url))
    async with PrometheusClient(prometheus) as client:
        reports = []
        for compiled in configs:
            async with backend_clients(compiled, prometheus) as servers:
                reports.append(await live_report(compiled, client, url, options, servers=servers))
        return reports


# --- explain ------------------------------------------------------------------------------


class RecordingClient:
    """The server's Prometheus calls, recorded on the way through. The clients of named
    backends (`server`) share the lists of the command line's (`into`) and name themselves
    in each entry."""

    def __init__(
        self, client: PrometheusClient, into: "RecordingClient | None" = None, server: str = ""
    ) -> None:
        self._client = client
        self._server = server
        self.queries: list[dict[str, Any]] = into.queries if into is not None else []
        self.listings: list[dict[str, Any]] = into.listings if into is not None else []

    def _entry(self, **fields: Any) -> dict[str, Any]:
        return {**fields, "prometheusServer": self._server} if self._server else fields

    async def query(self, query: str, time: float | None = None) -> QueryResult:
        entry = self._entry(promql=query)
        self.queries.append(entry)
        try:
            result = await self._client.query(query, time)
        except PrometheusError as exc:
            entry["error"] = str(exc)
            raise
        entry["resultType"] = result.result_type
        entry["samples"] = _samples(result)
        return result

    async def series(
        self, matches: Sequence[str], start: float | None = None, end: float | None = None
    ) -> list[dict[str, str]]:
        entry = self._entry(match=list(matches))
        self.listings.append(entry)
        try:
            found = await self._client.series(matches, start, end)
        except PrometheusError as exc:
            entry["error"] = str(exc)
            raise
        entry["series"] = len(found)
        return found


class _LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def captured_provider_logs() -> Iterator[list[str]]:
    """The providers log why a request failed; show that in the report, not on stderr."""
    logger = logging.getLogger("adapter.providers")
    handler = _LogCapture()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _api_path(req: ExplainRequest, resource: GroupResource, metric: str) -> str:
    query = {"labelSelector": req.selector, "metricLabelSelector": req.metric_selector}
    params = urlencode({k: v for k, v in query.items() if v})
    if req.external:
        path = f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{req.namespace}/{metric}"
    else:
        base = f"/apis/custom.metrics.k8s.io/{req.version}"
        name = req.name or "*"
        if resource == NAMESPACES:
            path = f"{base}/namespaces/{name}/metrics/{metric}"
        elif req.namespace:
            path = f"{base}/namespaces/{req.namespace}/{resource}/{name}/{metric}"
        else:
            path = f"{base}/{resource}/{name}/{metric}"
    return f"{path}?{params}" if params else path


def _normalise(mapper: RESTMapper, resource: GroupResource) -> GroupResource:
    # As CustomMetricsProvider does before looking a metric up.
    try:
        return mapper.resource_for(resource).group_resource
    except NoResourceMatchError:
        return GroupResource(resource.group, resource.resource.lower())


def _hints(
    req: ExplainRequest, resource: GroupResource, metric: str, registry: MetricRegistry
) -> list[str]:
    """For a metric the server does not find: close names, and a scope mismatch."""
    hints = []
    if req.external:
        close = difflib.get_close_matches(metric, list(registry.external), n=5, cutoff=0.5)
        if close:
            hints.append(f"close external metric names: {', '.join(close)}")
        if metric in {i.metric for i in registry.custom}:
            hints.append(f"{metric} is a custom metric (custom.metrics.k8s.io), not external")
        return hints
    wanted = f"{resource}/{metric}"
    candidates = sorted({str(i) for i in registry.custom})
    close = difflib.get_close_matches(wanted, candidates, n=5, cutoff=0.5)
    same_name = [c for c in candidates if c.endswith(f"/{metric}") and c != wanted]
    close += [c for c in same_name if c not in close]
    if close:
        hints.append(f"close metric names: {', '.join(close)}")
    namespaced = bool(req.namespace)
    if CustomMetricInfo(resource, not namespaced, metric) in registry.custom:
        fix = (
            "cluster-scoped: leave out --namespace"
            if namespaced
            else "namespaced: pass --namespace"
        )
        hints.append(f"{wanted} is {fix}")
    if metric in registry.external:
        hints.append(f"{metric} is an external metric: use --external")
    return hints


async def explain(
    req: ExplainRequest,
    registry: MetricRegistry,
    client: PrometheusClient,
    options: LiveOptions,
    *,
    objects: ObjectLister | None = None,
    mapper: RESTMapper | None = None,
    servers: Mapping[str, PrometheusClient] | None = None,
) -> dict[str, Any]:
    """Run one request through the server's providers and record every step. Without
    `objects`, `*` requests list objects from the series (no-cluster mode); without `mapper`,
    resources resolve through the built-in table; `servers` are the named backends' clients,
    by name, for rules that name one."""
    mapper = mapper or StaticRESTMapper(BUILTIN_RESOURCES)
    recording = RecordingClient(client)
    named = {
        name: RecordingClient(found, recording, name) for name, found in (servers or {}).items()
    }
    if req.external:
        resource, metric = NAMESPACES, req.target
        # The external API's only selector is labelSelector; accept either flag for it.
        req = replace(
            req,
            namespace=req.namespace or "default",
            selector=req.selector or req.metric_selector,
            metric_selector="",
        )
    else:
        resource_text, _, metric = req.target.partition("/")
        resource = _normalise(mapper, GroupResource.parse(resource_text))
        if resource == NAMESPACES and req.namespace:
            # The namespace object itself is a root-scoped request: `namespaces/{ns}/metrics/m`.
            name = req.name or ("" if req.selector else req.namespace)
            req = replace(req, namespace="", name=name)
    report: dict[str, Any] = {
        "api": "external.metrics.k8s.io" if req.external else "custom.metrics.k8s.io",
        "path": _api_path(req, resource, metric),
        "resource": None if req.external else str(resource),
        "metric": metric,
        "namespace": req.namespace or None,
        "rule": None,
        "series": None,
        "metricsQuery": None,
        "objects": recording.listings,
        "queries": recording.queries,
        "status": 200,
        "response": None,
        "log": [],
        "hints": [],
    }
    found = (
        registry.lookup_external(metric)
        if req.external
        else registry.lookup_custom(CustomMetricInfo(resource, bool(req.namespace), metric))
    )
    if found is not None:
        report.update(
            rule=found.rule.path,
            series=found.series_name,
            metricsQuery=found.rule.query.template.source,
        )
        if servers:
            report["prometheusServer"] = found.rule.prometheus_server
    with captured_provider_logs() as log:
        try:
            report["response"] = await _serve(
                req, resource, metric, registry, recording, options, objects, mapper, named
            )
        except APIError as exc:
            report["status"] = exc.code
            report["response"] = exc.status()
            if exc.code == 404:
                report["hints"] = _hints(req, resource, metric, registry)
    report["log"] = log
    return report


async def _serve(
    req: ExplainRequest,
    resource: GroupResource,
    metric: str,
    registry: MetricRegistry,
    recording: RecordingClient,
    options: LiveOptions,
    objects: ObjectLister | None,
    mapper: RESTMapper,
    named: Mapping[str, RecordingClient] | None = None,
) -> dict[str, Any]:
    """What the server's handler does with the request; raises APIError like it."""
    selector = parse_selector_param(req.selector, "labelSelector", promql=req.external)
    if req.external:
        external = ExternalMetricsProvider(lambda: registry, recording, servers=named)
        return external_metric_list(
            await external.get_external_metric(req.namespace, metric, selector)
        )
    metric_selector = parse_selector_param(req.metric_selector, "metricLabelSelector", promql=True)
    if objects is None:
        objects = PrometheusObjectLister(
            recording, options.max_age, clock=options.clock, servers=named
        )
    provider = CustomMetricsProvider(
        lambda: registry, recording, objects, mapper, options.clock, servers=named
    )
    if req.name and req.name != "*":
        values = [
            await provider.get_metric_by_name(
                resource, req.namespace, req.name, metric, metric_selector
            )
        ]
    else:
        values = await provider.get_metric_by_selector(
            resource, req.namespace, selector, metric, metric_selector
        )
    return custom_metric_list(values, req.version)
