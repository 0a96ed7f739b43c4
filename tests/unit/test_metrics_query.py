"""Query building: the Go adapter's metrics_query_test.go vectors and the selector table."""

from collections.abc import Sequence

import pytest

from adapter.apimachinery.labels import (
    EVERYTHING,
    Operator,
    Requirement,
    Selector,
    new_requirement,
    parse_selector,
)
from adapter.config.schema import LabelValueReplacement
from adapter.gotemplate.template import compile_template
from adapter.kube.rest_mapper import GroupResource
from adapter.naming.errors import (
    MalformedQueryError,
    NamingError,
    UnsupportedOperatorError,
    UnsupportedValuesError,
)
from adapter.naming.metrics_query import (
    METRICS_QUERY_FIELDS,
    MetricsQuery,
    UnexpressibleSelectorError,
    check_promql_selector,
)

RESOURCE = GroupResource("group", "resource")


class LabelIsResourceName:
    """The upstream tests' mock converter: a resource's label is its resource name."""

    def label_for_resource(self, resource: GroupResource) -> str:
        return resource.resource


class NoNamespaceLabel:
    def label_for_resource(self, resource: GroupResource) -> str:
        raise NamingError(
            f"unable to convert resource {resource} into label: "
            "no generic resource label form specified for this metric"
        )


def query(template: str, *, namespaced: bool = True) -> MetricsQuery:
    return MetricsQuery(
        compile_template(template, METRICS_QUERY_FIELDS),
        LabelIsResourceName(),
        namespaced=namespaced,
    )


def build(
    template: str,
    names: Sequence[str],
    *,
    namespace: str = "",
    selector: str = "",
    extra: Sequence[str] = (),
) -> str:
    return query(template).build("foo", RESOURCE, namespace, names, parse_selector(selector), extra)


@pytest.mark.parametrize(
    ("template", "names", "namespace", "selector", "extra", "expected"),
    [
        pytest.param("series <<.Series>>", ["bar"], "", "", (), "series foo", id="1-series"),
        pytest.param("<<.LabelMatchers>>", ["bar", "baz"], "", "", (), 'resource=~"bar|baz"', id="2-several-names"),
        pytest.param("<<.LabelMatchers>>", ["bar"], "", "", (), 'resource="bar"', id="3-one-name"),
        pytest.param("<<.LabelMatchers>>", ["bar"], "", "metric1=value1", (), 'metric1="value1",resource="bar"', id="4-metric-selector"),
        pytest.param('<<index .LabelValuesByName "resource">>', ["bar"], "", "", (), "bar", id="5-values-by-name"),
        pytest.param('<<index .LabelValuesByName "resource">>', ["bar", "baz"], "", "", (), "bar|baz", id="6-values-joined"),
        pytest.param('<<index .LabelValuesByName "namespaces">> <<index .LabelValuesByName "resource">>', ["bar", "baz"], "default", "", (), "default bar|baz", id="7-namespace-value"),
        pytest.param("<<.GroupBy>>", ["bar"], "", "", (), "resource", id="8-group-by"),
        pytest.param("<<.GroupBy>>", ["bar"], "", "", ("extra", "groups"), "resource,extra,groups", id="9-extra-group-by"),
        pytest.param("<<.GroupBySlice>>", ["bar"], "", "", (), "[resource]", id="10-group-by-slice"),
        pytest.param("<<.GroupBySlice>>", ["bar"], "", "", ("extra", "groups"), "[resource extra groups]", id="10b-group-by-slice-extra"),
        pytest.param("<<.LabelMatchers>>", ["p1"], "ns", "b=2,a=1", (), 'a="1",b="2",namespaces="ns",resource="p1"', id="order-selector-namespace-object"),
        pytest.param("<<.LabelValuesByName>>", ["p1", "p2"], "ns", "", (), "map[namespaces:ns resource:p1|p2]", id="values-map"),
        pytest.param(
            'sum(rate(<<.Series>>{<<.LabelMatchers>>,container!="POD"}[2m])) by (<<.GroupBy>>)',
            ["p1", "p2"], "default", "", (),
            'sum(rate(foo{namespaces="default",resource=~"p1|p2",container!="POD"}[2m])) by (resource)',
            id="real-template",
        ),
    ],
)  # fmt: skip
def test_build(
    template: str,
    names: list[str],
    namespace: str,
    selector: str,
    extra: tuple[str, ...],
    expected: str,
) -> None:
    assert build(template, names, namespace=namespace, selector=selector, extra=extra) == expected


def build_external(
    template: str, *, namespace: str = "", selector: str = "", namespaced: bool = True
) -> str:
    return query(template, namespaced=namespaced).build_external(
        "foo", namespace, parse_selector(selector)
    )


@pytest.mark.parametrize(
    ("template", "namespace", "selector", "namespaced", "expected"),
    [
        pytest.param("series <<.Series>>", "", "", True, "series foo", id="11-series"),
        pytest.param("<<.GroupBy>>|<<.GroupBySlice>>", "", "", True, "|[]", id="12-13-group-by-always-empty"),
        pytest.param('<<index .LabelValuesByName "namespaces">> <<.GroupBySlice>>', "default", "", True, "default []", id="14-namespace"),
        pytest.param('<<index .LabelValuesByName "namespaces">> <<.GroupBySlice>>', "default", "", False, " []", id="15-not-namespaced"),
        pytest.param("<<.LabelMatchers>>", "", "foo=bar", True, 'foo="bar"', id="16-selector"),
        pytest.param("<<.LabelMatchers>>", "default", "foo=bar", True, 'foo="bar",namespaces="default"', id="17-selector-namespace"),
        pytest.param("<<.LabelMatchers>>", "", "foo=bar,qux in (bar,baz)", True, 'foo="bar",qux=~"bar|baz"', id="18-set"),
        pytest.param("<<.LabelValuesByName>>", "", "foo=bar", True, "map[foo:bar]", id="19-values-map"),
        pytest.param("<<.LabelValuesByName>>", "", "foo in (bar,baz)", True, "map[foo:bar|baz]", id="20-values-map-set"),
    ],
)  # fmt: skip
def test_build_external(
    template: str, namespace: str, selector: str, namespaced: bool, expected: str
) -> None:
    assert (
        build_external(template, namespace=namespace, selector=selector, namespaced=namespaced)
        == expected
    )


@pytest.mark.parametrize(
    ("selector", "matcher"),
    [
        pytest.param("k=v", 'k="v"', id="equals"),
        pytest.param("k==v", 'k="v"', id="double-equals"),
        pytest.param("k!=v", 'k!="v"', id="not-equals"),
        pytest.param("k in (v)", 'k=~"v"', id="in-one"),
        pytest.param("k in (b,a)", 'k=~"a|b"', id="in-several-sorted"),
        pytest.param("k notin (v)", 'k!~"v"', id="notin-one"),
        pytest.param("k notin (a,b)", 'k!~"a|b"', id="notin-several"),
        pytest.param("k", 'k!=""', id="exists"),
        pytest.param("!k", 'k=""', id="does-not-exist"),
        pytest.param("k=", 'k=""', id="empty-value"),
        pytest.param(
            "app.kubernetes.io/name=x", 'app.kubernetes.io/name="x"', id="label-name-verbatim"
        ),
    ],
)
def test_selector_to_matcher(selector: str, matcher: str) -> None:
    assert build_external("<<.LabelMatchers>>", selector=selector) == matcher


def selector_of(*requirements: Requirement) -> Selector:
    return Selector(requirements=tuple(requirements))


@pytest.mark.parametrize(
    ("selector", "error"),
    [
        pytest.param(parse_selector("k>5"), UnsupportedOperatorError, id="greater-than"),
        pytest.param(parse_selector("k<5"), UnsupportedOperatorError, id="less-than"),
        pytest.param(
            selector_of(Requirement("k", Operator.IN, ())),
            MalformedQueryError,
            id="in-without-values",
        ),
        pytest.param(
            selector_of(Requirement("k", Operator.EXISTS, ("v",))),
            UnsupportedValuesError,
            id="exists-with-values",
        ),
    ],
)
def test_selector_errors(selector: Selector, error: type[Exception]) -> None:
    with pytest.raises(error):
        query("<<.LabelMatchers>>").build_external("foo", "", selector)


@pytest.mark.parametrize(
    "selector",
    [
        pytest.param("k=v,k2!=v,k3 in (a,b),k4 notin (a),k5,!k6", id="every-operator"),
        pytest.param("K_9=v,x_y=", id="underscores-digits-capitals"),
        pytest.param("a_b", id="exists"),
    ],
)
def test_promql_expressible_selectors_pass(selector: str) -> None:
    check_promql_selector(parse_selector(selector))


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        pytest.param("a.b/c=d", 'label name "a.b/c" is not valid in PromQL: it must match [a-zA-Z_][a-zA-Z0-9_]*', id="prefixed-key"),
        pytest.param("app.kubernetes.io/name", 'label name "app.kubernetes.io/name" is not valid in PromQL: it must match [a-zA-Z_][a-zA-Z0-9_]*', id="exists-prefixed"),
        pytest.param("0", 'label name "0" is not valid in PromQL: it must match [a-zA-Z_][a-zA-Z0-9_]*', id="digit-first"),
        pytest.param("a-b!=c", 'label name "a-b" is not valid in PromQL: it must match [a-zA-Z_][a-zA-Z0-9_]*', id="dash"),
        pytest.param("x>1", 'operator ">" in "x>1" is not supported by prometheus label matchers', id="gt"),
        pytest.param("x<1", 'operator "<" in "x<1" is not supported by prometheus label matchers', id="lt"),
        pytest.param("ok=1,9>1", 'label name "9" is not valid in PromQL: it must match [a-zA-Z_][a-zA-Z0-9_]*; operator ">" in "9>1" is not supported by prometheus label matchers', id="every-reason"),
    ],
)  # fmt: skip
def test_promql_unexpressible_selectors_fail(selector: str, message: str) -> None:
    with pytest.raises(UnexpressibleSelectorError) as info:
        check_promql_selector(parse_selector(selector))
    assert str(info.value) == message


def test_error_messages_match_go() -> None:
    assert str(UnsupportedOperatorError()) == "operator not supported by prometheus"
    assert str(MalformedQueryError()) == "operator requires values"
    assert str(UnsupportedValuesError()) == "operator does not support values"


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        pytest.param('a"b', 'k="a\\"b"', id="double-quote"),
        pytest.param("a\\b", 'k="a\\\\b"', id="backslash"),
        pytest.param("a\nb", 'k="a\\nb"', id="newline"),
    ],
)
def test_values_are_go_quoted(value: str, quoted: str) -> None:
    # Label selector values cannot contain these, but object names and namespaces reach
    # the matcher unvalidated in no-cluster mode; they must stay valid PromQL.
    assert build("<<.LabelMatchers>>", [value]) == quoted.replace("k=", "resource=")


def test_namespace_without_label_is_an_error() -> None:
    external = MetricsQuery(
        compile_template("q{<<.LabelMatchers>>}", METRICS_QUERY_FIELDS), NoNamespaceLabel()
    )
    with pytest.raises(NamingError, match="no generic resource label form specified"):
        external.build_external("foo", "default", EVERYTHING)
    assert external.build_external("foo", "", EVERYTHING) == "q{}"  # no namespace, no label needed


def test_empty_query_is_an_error() -> None:
    with pytest.raises(NamingError, match="empty query produced by metrics query template"):
        build("<<if false>>x<<end>>", ["a"])


def test_label_value_replacements_apply_to_external_values() -> None:
    q = MetricsQuery(
        compile_template("<<.LabelValuesByName>> <<.LabelMatchers>>", METRICS_QUERY_FIELDS),
        LabelIsResourceName(),
        label_value_replacements=[LabelValueReplacement("_", "#")],
    )
    selector = Selector((new_requirement("topic", Operator.EQUALS, ["a_b"]),))
    assert q.build_external("s", "", selector) == 'map[topic:a#b] topic="a_b"'
