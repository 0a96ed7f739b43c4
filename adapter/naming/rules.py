"""Compile a config into rules, once, at load time.

What the Go adapter refuses to start with (a bad regex, a template that does not parse, a
resource template without `.Resource`, an override the cluster does not know), and what
stops a whole API from working (an empty `seriesQuery` fails every relist), is an error here,
reported with the file, the path, the line and the reason, all errors of a file together.
A config the Go adapter starts with starts here too: what Go only finds while serving (an
empty `metricsQuery`, a template mistake Go reports only where execution reaches it,
`resourceRules` that cannot query pods or nodes) is a warning saying which requests fail and
how, and those requests fail as they do in Go.
Things that are legal but almost certainly not meant are warnings too.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import TypeVar

from adapter.config.errors import ConfigError, ConfigIssue, IssueList
from adapter.config.loader import read_config_file
from adapter.config.schema import AdapterConfig, DiscoveryRule, ResourceMapping, ResourceRule
from adapter.gotemplate.template import TemplateError, compile_template
from adapter.kube.rest_mapper import (
    BUILTIN_RESOURCES,
    NAMESPACES,
    NODES,
    PODS,
    GroupResource,
    RESTMapper,
    StaticRESTMapper,
)
from adapter.naming.errors import NamingError
from adapter.naming.metric_namer import MetricNamer, new_metric_namer
from adapter.naming.metrics_query import METRICS_QUERY_FIELDS, MetricsQuery
from adapter.naming.resource_converter import ResourceConverter, new_resource_converter
from adapter.naming.series_filter import SeriesFilter, new_series_filter
from adapter.prometheus.config import DEFAULT_SERVER

__all__ = [
    "CompiledConfig",
    "MetricRule",
    "ResourceMetricRules",
    "ResourceQuery",
    "RuleKind",
    "compile_config",
    "load_rules",
]

T = TypeVar("T")


class RuleKind(StrEnum):
    CUSTOM = "rules"
    EXTERNAL = "externalRules"


@dataclass(frozen=True, slots=True)
class MetricRule:
    """One compiled entry of `rules` or `externalRules`."""

    kind: RuleKind
    index: int
    source: DiscoveryRule
    filters: tuple[SeriesFilter, ...]  # seriesFilters, then the one implied by name.matches
    namer: MetricNamer
    converter: ResourceConverter
    query: MetricsQuery

    @property
    def path(self) -> str:
        return f"{self.kind}[{self.index}]"

    @property
    def series_query(self) -> str:
        return self.source.series_query

    @property
    def prometheus_server(self) -> str:
        """The backend that lists and queries this rule's series: a `prometheusServers`
        name, or DEFAULT_SERVER for the command line's (--prometheus-url)."""
        return self.source.prometheus_server or DEFAULT_SERVER

    def keeps(self, series_name: str) -> bool:
        return all(f.matches(series_name) for f in self.filters)


@dataclass(frozen=True, slots=True)
class ResourceQuery:
    """`resourceRules.cpu` or `.memory`, compiled."""

    container_query: MetricsQuery
    node_query: MetricsQuery
    converter: ResourceConverter
    container_label: str


@dataclass(frozen=True, slots=True)
class ResourceMetricRules:
    cpu: ResourceQuery
    memory: ResourceQuery
    window_seconds: float
    # A `prometheusServers` name, or DEFAULT_SERVER for the command line's (--prometheus-url).
    prometheus_server: str = DEFAULT_SERVER


@dataclass(frozen=True, slots=True)
class CompiledConfig:
    file: str
    config: AdapterConfig
    rules: tuple[MetricRule, ...]
    external_rules: tuple[MetricRule, ...]
    resource_rules: ResourceMetricRules | None
    warnings: tuple[ConfigIssue, ...]


# A matcher value that looks like a regex behind `=`/`!=` (the upstream sample config has
# `__name__!="^container_.*"`, which excludes nothing). A name is only tried where its word
# starts (past word characters that cannot start a name, such as digits), and the value is
# checked by a lookahead, so that a long word or an unterminated value is scanned once, not
# once per position: linear time.
_REGEX_BEHIND_EQUALITY = re.compile(
    r'(?<!\w)[^\WA-Za-z_]*([A-Za-z_]\w*)\s*(!?=)\s*"((?=\^|[^"]*\.[*+])[^"]*)"'
)

_TEMPLATE_NAME = "metrics-query"

# What a query that can never be rendered does to requests, by where the template is used;
# and what a request does whose rendering fails.
_CUSTOM_EFFECT = (
    "the rule's metrics are listed, but every request for them is answered 404 "
    '"the server could not find the metric ..."'
)
_EXTERNAL_EFFECT = (
    "the rule's metrics are listed, but every request for them is answered 500 "
    '"unable to fetch metrics"'
)
_POD_EFFECT = (
    "no pod metrics can be queried: metrics.k8s.io lists of pods come back without any pod "
    "and a named pod is 404"
)
_NODE_EFFECT = (
    "no node metrics can be queried: metrics.k8s.io lists of nodes come back empty and a "
    "named node is 404"
)
_CUSTOM_FAILURE = 'is answered 404 "the server could not find the metric ..."'
_EXTERNAL_FAILURE = 'is answered 500 "unable to fetch metrics"'
_POD_FAILURE = "leaves its pods out of metrics.k8s.io lists, and a named pod is 404"
_NODE_FAILURE = "leaves its nodes out of metrics.k8s.io lists, and a named node is 404"
_AS_IN_GO = "(the Go adapter starts with this config and fails these requests the same way)"


def _dotted_resource_hint(resource: GroupResource) -> str:
    """For `resource: deployments.apps` (no group): how to write it."""
    if resource.group or "." not in resource.resource:
        return ""
    name, group = resource.resource.split(".", 1)
    return f" (a resource name has no dots; write {{group: {group}, resource: {name}}})"


class _Compiler:
    def __init__(self, mapper: RESTMapper, issues: IssueList, require_known: bool) -> None:
        self.mapper = mapper
        self.issues = issues
        self.require_known = require_known

    def attempt(self, path: str, build: Callable[[], T]) -> T | None:
        """Run one compile step; a NamingError becomes an issue at `path`."""
        try:
            return build()
        except NamingError as exc:
            self.issues.add(path, str(exc))
            return None

    def converter(self, mapping: ResourceMapping, path: str) -> ResourceConverter | None:
        overrides = {
            label: GroupResource(ref.group, ref.resource)
            for label, ref in mapping.overrides.items()
        }
        built = self.attempt(
            f"{path}.template" if mapping.template else path,
            lambda: new_resource_converter(self.mapper, mapping.template, overrides),
        )
        if built is None:
            return None
        converter, unresolved = built
        # What start-up (Go's newLabelGroupResExtractor) reaches has failed already.
        for error in converter.template.deferred_errors if converter.template else ():
            self.issues.warn(
                f"{path}.template",
                f"has a mistake Go reports only when executing the template reaches it ({error}), "
                "so each request that needs the label of a resource for which it does fails "
                f"{_AS_IN_GO}",
            )
        for item in unresolved:
            where = f"{path}.overrides.{item.label}"
            dotted = _dotted_resource_hint(item.resource)
            if self.require_known or dotted:
                # A resource name never has a dot, so Go rejects `deployments.apps` with or
                # without a cluster to resolve it through.
                self.issues.add(where, f"unable to normalize group-resource: {item.reason}{dotted}")
            else:
                self.issues.warn(
                    where,
                    f"resource {item.resource} is not in the built-in resource table; it is used "
                    "as written (with a cluster, it is resolved through API discovery)",
                )
        return converter

    def query(
        self,
        text: str,
        path: str,
        converter: ResourceConverter | None,
        rule: DiscoveryRule | None,
        effect: str,
        failure: str,
        *,
        warn: bool = True,
    ) -> MetricsQuery | None:
        """The compiled template at `path`, or None if Go's parser rejects it. An empty one
        is kept, unusable, with a warning (`warn`) saying that `effect` follows; one that
        fails where execution reaches a mistake (Go finds it only there) renders, with a
        warning for each mistake saying that a request reaching it `failure`."""
        unusable = None
        if not text:
            unusable = f"{path} is empty"
            if warn:
                self.issues.warn(path, f"is empty, so {effect} {_AS_IN_GO}")
            template = compile_template("", METRICS_QUERY_FIELDS, name=_TEMPLATE_NAME)
        else:
            try:
                template = compile_template(text, METRICS_QUERY_FIELDS, name=_TEMPLATE_NAME)
            except TemplateError as exc:
                self.issues.add(path, f"unable to parse metrics query template: {exc}")
                return None
            for error in template.deferred_errors if warn else ():
                self.issues.warn(
                    path,
                    f"has a mistake Go reports only when executing the template reaches it "
                    f"({error}), so each request whose query reaches it {failure} {_AS_IN_GO}",
                )
        if converter is None:
            return None
        if rule is None:
            return MetricsQuery(template, converter, unusable=unusable)
        return MetricsQuery(
            template,
            converter,
            namespaced=rule.resources.namespaced is not False,
            label_value_replacements=rule.label_value_replacements,
            unusable=unusable,
        )

    def discovery_rule(self, kind: RuleKind, index: int, rule: DiscoveryRule) -> MetricRule | None:
        path = f"{kind}[{index}]"
        if not rule.series_query:
            self.issues.add(f"{path}.seriesQuery", "is required (a Prometheus series selector)")
        else:
            self.check_series_query(rule.series_query, f"{path}.seriesQuery")
        filters = [
            self.attempt(f"{path}.seriesFilters[{i}]", partial(new_series_filter, f.is_, f.is_not))
            for i, f in enumerate(rule.series_filters)
        ]
        namer = self.attempt(
            f"{path}.name.matches" if rule.name.matches else f"{path}.name",
            lambda: new_metric_namer(rule.name.matches, rule.name.as_),
        )
        if rule.name.matches and namer is not None:
            filters.append(SeriesFilter(namer.matches, positive=True))
        converter = self.converter(rule.resources, f"{path}.resources")
        custom = kind is RuleKind.CUSTOM
        query = self.query(
            rule.metrics_query,
            f"{path}.metricsQuery",
            converter,
            rule,
            _CUSTOM_EFFECT if custom else _EXTERNAL_EFFECT,
            _CUSTOM_FAILURE if custom else _EXTERNAL_FAILURE,
        )
        if namer is not None:
            self.check_name(namer, f"{path}.name.as")
        if converter is not None:
            self.check_resources(kind, rule, converter, f"{path}.resources")
        if namer is None or converter is None or query is None or None in filters:
            return None
        return MetricRule(
            kind=kind,
            index=index,
            source=rule,
            filters=tuple(f for f in filters if f is not None),
            namer=namer,
            converter=converter,
            query=query,
        )

    def check_series_query(self, series_query: str, path: str) -> None:
        for label, op, value in _REGEX_BEHIND_EQUALITY.findall(series_query):
            regex_op = "=~" if op == "=" else "!~"
            self.issues.warn(
                path,
                f'{label}{op}"{value}" compares literally; for a regular expression use {regex_op}',
            )

    def check_name(self, namer: MetricNamer, path: str) -> None:
        for ref in namer.unknown_references():
            hint = ""
            leading = re.match(r"\d+", ref)
            if leading:
                rest = ref[leading.end() :]
                hint = f"; did you mean ${{{leading.group()}}}{rest}?"
            self.issues.warn(
                path,
                f"${ref} refers to a capture group named {ref!r} that name.matches does not "
                f"define, so it expands to an empty string{hint}",
            )

    def check_resources(
        self, kind: RuleKind, rule: DiscoveryRule, converter: ResourceConverter, path: str
    ) -> None:
        mapping = rule.resources
        if kind is RuleKind.CUSTOM:
            if mapping.namespaced is not None:
                self.issues.warn(
                    f"{path}.namespaced", "is ignored for rules; only externalRules use it"
                )
            if not mapping.template and not mapping.overrides:
                self.issues.warn(
                    path,
                    "maps no label to a resource (no overrides, no template), so this rule "
                    "defines no metrics",
                )
            namespaced = sorted(
                str(r) for r in set(converter.overrides.values()) if converter.is_namespaced(r)
            )
            if namespaced and not self.maps_namespaces(converter):
                self.issues.warn(
                    path,
                    f"no label maps to namespaces, so every request for metrics on namespaced "
                    f"resources ({', '.join(namespaced)}) answers 'the server could not find "
                    "the metric' (404), as in the Go adapter; "
                    "add an override for the namespace label",
                )
            return
        if mapping.namespaced is not False and not self.maps_namespaces(converter):
            self.issues.warn(
                path,
                "the rule is namespaced (the default) but no label maps to namespaces, so "
                "every request for its metrics fails with 'unable to fetch metrics' (as in "
                "the Go adapter); add an override for the namespace label or set "
                "resources.namespaced: false",
            )

    @staticmethod
    def maps_namespaces(converter: ResourceConverter) -> bool:
        try:
            converter.label_for_resource(NAMESPACES)
        except NamingError:
            return False
        return True

    def resource_query(self, rule: ResourceRule, path: str) -> ResourceQuery | None:
        """`resourceRules.cpu` or `.memory`. As in Go, only what does not parse is an error;
        a missing query or label mapping fails the requests that need it (the Go adapter's
        provider needs both cpu and memory for every pod and node)."""
        unset = rule == ResourceRule()
        if unset:
            self.issues.warn(
                path,
                "is not set, and every pod and node needs both cpu and memory, so no pod or "
                "node metrics can be queried: metrics.k8s.io lists come back empty and a named "
                f"pod or node is 404 {_AS_IN_GO}",
            )
        converter = self.converter(rule.resources, f"{path}.resources")
        container = self.query(
            rule.container_query,
            f"{path}.containerQuery",
            converter,
            None,
            _POD_EFFECT,
            _POD_FAILURE,
            warn=not unset,
        )
        node = self.query(
            rule.node_query,
            f"{path}.nodeQuery",
            converter,
            None,
            _NODE_EFFECT,
            _NODE_FAILURE,
            warn=not unset,
        )
        if converter is None or container is None or node is None:
            return None
        if not unset:
            self.check_resource_labels(rule, converter, path)
        return ResourceQuery(container, node, converter, rule.container_label)

    def check_resource_labels(
        self, rule: ResourceRule, converter: ResourceConverter, path: str
    ) -> None:
        """Warn about the labels that pod and node queries need but the rule cannot name."""
        unmapped: dict[GroupResource, str] = {}
        for resource in (PODS, NAMESPACES, NODES):
            try:
                converter.label_for_resource(resource)
            except NamingError as exc:
                unmapped[resource] = str(exc)
        for resources, effect, fix in (
            ((PODS, NAMESPACES), _POD_EFFECT, "overrides for the pod and namespace labels"),
            ((NODES,), _NODE_EFFECT, "an override for the node label"),
        ):
            missing = [r for r in resources if r in unmapped]
            if missing:
                names = " and ".join(str(r) for r in missing)
                self.issues.warn(
                    f"{path}.resources",
                    f"maps no label to {names} ({unmapped[missing[0]]}), so {effect} "
                    f"{_AS_IN_GO}; add {fix}",
                )
        if not rule.container_label:
            pod_label = "<pod label>" if PODS in unmapped else converter.label_for_resource(PODS)
            self.issues.warn(
                f"{path}.containerLabel",
                f'is empty, so pod queries group by "{pod_label}," and each pod reports one '
                'container named "" (as in the Go adapter); set it to the label that holds the '
                "container name, such as container",
            )


def compile_config(
    config: AdapterConfig,
    issues: IssueList,
    *,
    file: str = "<config>",
    mapper: RESTMapper | None = None,
    require_known_resources: bool = False,
) -> CompiledConfig:
    """Compile every rule; errors are appended to `issues`, warnings returned in the result.

    With `require_known_resources`, an override naming a resource the mapper does not know
    is an error (the Go adapter's behaviour against a cluster); without it, a warning.
    """
    compiler = _Compiler(
        mapper or StaticRESTMapper(BUILTIN_RESOURCES), issues, require_known_resources
    )
    rules = [compiler.discovery_rule(RuleKind.CUSTOM, i, r) for i, r in enumerate(config.rules)]
    external = [
        compiler.discovery_rule(RuleKind.EXTERNAL, i, r)
        for i, r in enumerate(config.external_rules)
    ]
    resource_rules = None
    if config.resource_rules is not None:
        cpu = compiler.resource_query(config.resource_rules.cpu, "resourceRules.cpu")
        memory = compiler.resource_query(config.resource_rules.memory, "resourceRules.memory")
        if cpu is not None and memory is not None:
            resource_rules = ResourceMetricRules(
                cpu,
                memory,
                config.resource_rules.window_seconds,
                config.resource_rules.prometheus_server or DEFAULT_SERVER,
            )
    if not config.rules and not config.external_rules and config.resource_rules is None:
        issues.warn(
            "", "defines no rules, externalRules or resourceRules: no metrics API will be served"
        )
    return CompiledConfig(
        file=file,
        config=config,
        rules=tuple(r for r in rules if r is not None),
        external_rules=tuple(r for r in external if r is not None),
        resource_rules=resource_rules,
        warnings=tuple(issues.warnings),
    )


def load_rules(
    path: str | Path, *, mapper: RESTMapper | None = None, require_known_resources: bool = False
) -> CompiledConfig:
    """Read, decode and compile a config file. Raises ConfigError listing every problem."""
    issues = IssueList()
    config = read_config_file(path, issues)
    compiled = compile_config(
        config,
        issues,
        file=str(path),
        mapper=mapper,
        require_known_resources=require_known_resources,
    )
    if issues:
        raise ConfigError(str(path), issues)
    return compiled
