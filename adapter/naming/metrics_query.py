"""From a request to PromQL: the data a `metricsQuery` template sees, and its rendering.

Port of the Go adapter's `pkg/naming/metrics_query.go`. The matchers it builds, their order
and their quoting decide the exact query sent to Prometheus:
1. one matcher per `metricLabelSelector` requirement (sorted by key, values sorted);
2. `<namespace label>="<ns>"` for a namespaced request;
3. the object matcher: `<label>="<name>"` for one object, `<label>=~"a|b"` for several.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from adapter.apimachinery.labels import Operator, Selector, SelectorError
from adapter.config.schema import LabelValueReplacement
from adapter.golang.quote import go_quote
from adapter.gotemplate.template import FieldKind, GoTemplate, TemplateExecError
from adapter.kube.rest_mapper import NAMESPACES, GroupResource
from adapter.naming.errors import (
    LabelNotSpecifiedError,
    MalformedQueryError,
    NamingError,
    UnsupportedOperatorError,
    UnsupportedValuesError,
    UnusableQueryError,
)

__all__ = [
    "METRICS_QUERY_FIELDS",
    "MetricsQuery",
    "QueryArgs",
    "ResourceLabeler",
    "UnexpressibleSelectorError",
    "check_promql_selector",
    "label_matcher",
]

METRICS_QUERY_FIELDS: Mapping[str, FieldKind] = {
    "Series": FieldKind.STRING,
    "LabelMatchers": FieldKind.STRING,
    "LabelValuesByName": FieldKind.STRING_MAP,
    "GroupBy": FieldKind.STRING,
    "GroupBySlice": FieldKind.STRING_LIST,
}

_EQUALITY = (Operator.EQUALS, Operator.DOUBLE_EQUALS)
_PRESENCE = (Operator.EXISTS, Operator.DOES_NOT_EXIST)


class ResourceLabeler(Protocol):
    """What query building needs of a ResourceConverter."""

    def label_for_resource(self, resource: GroupResource) -> str: ...


def label_matcher(label: str, op: str, value: str) -> str:
    """`label<op>"value"` with Go `%q` quoting; label names are not validated, as in Go."""
    return f"{label}{op}{go_quote(value)}"


# Prometheus 2.x's label names. Kubernetes keys may also hold `.`, `-`, `/` or start with a
# digit (`app.kubernetes.io/name`, `0`); Go sends those verbatim and Prometheus rejects the
# query. Keys cannot start with `_`, so reserved names like `__name__` never get here.
_PROMQL_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_ORDERING = (Operator.GREATER_THAN, Operator.LESS_THAN)


class UnexpressibleSelectorError(SelectorError):
    """A valid Kubernetes selector that PromQL label matchers cannot express."""


def check_promql_selector(selector: Selector) -> None:
    """Raise UnexpressibleSelectorError, naming every reason, when `selector` cannot become
    the PromQL matchers of `<<.LabelMatchers>>`: a key that is no Prometheus label name, or
    Gt/Lt. Callers check before querying, so that such a client mistake is a 400; Go sends
    the bad names (Prometheus: 500) and fails on Gt/Lt (custom 404, external 500)."""
    problems: list[str] = []
    for req in selector.requirements:
        if not _PROMQL_LABEL_NAME.fullmatch(req.key):
            problems.append(
                f"label name {go_quote(req.key)} is not valid in PromQL: "
                f"it must match {_PROMQL_LABEL_NAME.pattern}"
            )
        if req.operator in _ORDERING:
            symbol = ">" if req.operator == Operator.GREATER_THAN else "<"
            problems.append(
                f"operator {go_quote(symbol)} in {go_quote(str(req))} is not supported by "
                "prometheus label matchers"
            )
    if problems:
        raise UnexpressibleSelectorError("; ".join(dict.fromkeys(problems)))


def _matcher_operator(operator: Operator, count: int) -> str:
    """Go's `selectMatcher`, which also decides the errors for value counts."""
    if count == 0:
        if operator == Operator.EXISTS:
            return "!="
        if operator == Operator.DOES_NOT_EXIST:
            return "="
        raise MalformedQueryError()
    if operator in _PRESENCE:
        raise UnsupportedValuesError()
    if count == 1:
        if operator in _EQUALITY:
            return "="
        if operator == Operator.NOT_EQUALS:
            return "!="
        return "=~" if operator == Operator.IN else "!~"
    # A label has one value, so several values always become a regex alternation.
    return "=~" if operator in (*_EQUALITY, Operator.IN) else "!~"


@dataclass(frozen=True, slots=True)
class QueryArgs:
    """The template data (`queryTemplateArgs` in Go)."""

    series: str
    label_matchers: str
    label_values_by_name: dict[str, str]
    group_by: str
    group_by_slice: tuple[str, ...]

    def as_template_data(self) -> dict[str, object]:
        return {
            "Series": self.series,
            "LabelMatchers": self.label_matchers,
            "LabelValuesByName": self.label_values_by_name,
            "GroupBy": self.group_by,
            "GroupBySlice": self.group_by_slice,
        }


class _Matchers:
    """Matcher expressions and the values by label, in the order they were added."""

    def __init__(self) -> None:
        self.exprs: list[str] = []
        self.values_by_name: dict[str, str] = {}

    def add_requirement(self, label: str, operator: Operator, values: Sequence[str]) -> None:
        """Go's `processQueryParts` for one part."""
        if not label:
            raise LabelNotSpecifiedError()
        if operator in _ORDERING:
            raise UnsupportedOperatorError()
        op = _matcher_operator(operator, len(values))
        self.exprs.append(label_matcher(label, op, "|".join(values)))
        self.values_by_name[label] = "|".join(values)

    def add_selector(self, selector: Selector) -> None:
        for req in selector.requirements:
            self.add_requirement(req.key, req.operator, req.values)


class MetricsQuery:
    """A compiled `metricsQuery` (or containerQuery/nodeQuery) of one rule.

    `unusable` says why no query can ever be rendered from the template (it is empty):
    the Go adapter starts with such a rule and fails each request when it renders the
    template, and so does `render`, with an UnusableQueryError.
    """

    def __init__(
        self,
        template: GoTemplate,
        converter: ResourceLabeler,
        *,
        namespaced: bool = True,
        label_value_replacements: Sequence[LabelValueReplacement] = (),
        unusable: str | None = None,
    ) -> None:
        self.template = template
        self.converter = converter
        self.namespaced = namespaced  # externalRules only: add the request namespace
        self.label_value_replacements = tuple(label_value_replacements)
        self.unusable = unusable

    def args(
        self,
        series: str,
        resource: GroupResource,
        namespace: str,
        names: Sequence[str] | None,
        metric_selector: Selector,
        extra_group_by: Sequence[str] = (),
    ) -> QueryArgs:
        """Template data for a custom-metrics (or resource-metrics) request (Go `Build`).

        `names=None` (not in Go) asks for every object: the object matcher becomes
        `<label>!=""`, for the shared namespace-wide queries of `--namespace-query-ttl`."""
        matchers = _Matchers()
        matchers.add_selector(metric_selector)
        if namespace:
            matchers.add_requirement(
                self.converter.label_for_resource(NAMESPACES), Operator.EQUALS, (namespace,)
            )
        resource_label = self.converter.label_for_resource(resource)
        if names is None:
            target, op = "", "!="
        else:
            # Object names are joined without regex escaping, exactly as the Go adapter does.
            target = "|".join(names)
            op = "=~" if len(names) > 1 else "="
        matchers.exprs.append(label_matcher(resource_label, op, target))
        matchers.values_by_name[resource_label] = target
        group_by = (resource_label, *extra_group_by)
        return QueryArgs(
            series=series,
            label_matchers=",".join(matchers.exprs),
            label_values_by_name=matchers.values_by_name,
            group_by=",".join(group_by),
            group_by_slice=group_by,
        )

    def external_args(
        self,
        series: str,
        namespace: str,
        metric_selector: Selector,
        group_by: str = "",
        group_by_slice: Sequence[str] = (),
    ) -> QueryArgs:
        """Template data for an external-metrics request (Go `BuildExternal`); the adapter
        always passes an empty group-by."""
        matchers = _Matchers()
        matchers.add_selector(metric_selector)
        if self.namespaced and namespace:
            matchers.add_requirement(
                self.converter.label_for_resource(NAMESPACES), Operator.EQUALS, (namespace,)
            )
        values = matchers.values_by_name
        for replacement in self.label_value_replacements:
            values = {
                k: v.replace(replacement.find, replacement.replace) for k, v in values.items()
            }
        return QueryArgs(
            series=series,
            label_matchers=",".join(matchers.exprs),
            label_values_by_name=values,
            group_by=group_by,
            group_by_slice=tuple(group_by_slice),
        )

    def render(self, args: QueryArgs) -> str:
        if self.unusable is not None:
            raise UnusableQueryError(self.unusable)
        try:
            query = self.template.render(args.as_template_data())
        except TemplateExecError as exc:
            raise NamingError(str(exc)) from None
        if not query:
            raise NamingError("empty query produced by metrics query template")
        return query

    def build(
        self,
        series: str,
        resource: GroupResource,
        namespace: str,
        names: Sequence[str] | None,
        metric_selector: Selector,
        extra_group_by: Sequence[str] = (),
    ) -> str:
        return self.render(
            self.args(series, resource, namespace, names, metric_selector, extra_group_by)
        )

    def build_external(self, series: str, namespace: str, metric_selector: Selector) -> str:
        return self.render(self.external_args(series, namespace, metric_selector))
