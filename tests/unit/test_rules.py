"""Compiling whole configs: the sample files, load-time errors and warnings."""

import textwrap
import time
from pathlib import Path

import pytest

from adapter.apimachinery.labels import EVERYTHING, parse_selector
from adapter.config.errors import ConfigError
from adapter.kube.rest_mapper import NODES, PODS, GroupResource
from adapter.naming.errors import NamingError, UnusableQueryError
from adapter.naming.rules import CompiledConfig, RuleKind, load_rules

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
SAMPLES = sorted(CONFIG_DIR.glob("*.yaml"))


def load_text(tmp_path: Path, text: str) -> CompiledConfig:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text))
    return load_rules(path)


def errors_of(tmp_path: Path, text: str) -> list[tuple[str, int | None, str]]:
    with pytest.raises(ConfigError) as excinfo:
        load_text(tmp_path, text)
    return [(i.path, i.line, i.reason) for i in excinfo.value.issues]


def test_samples_exist() -> None:
    assert {p.name for p in SAMPLES} >= {
        "helm-default-rules.yaml",
        "sample-config.yaml",
        "resource-rules.yaml",
        "config-walkthrough.yaml",
    }


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_every_sample_config_loads(path: Path) -> None:
    compiled = load_rules(path)
    loaded = len(compiled.rules) + len(compiled.external_rules)
    assert loaded == len(compiled.config.rules) + len(compiled.config.external_rules)
    assert loaded or compiled.resource_rules is not None


def test_helm_default_rules() -> None:
    compiled = load_rules(CONFIG_DIR / "helm-default-rules.yaml")
    assert len(compiled.rules) == 6
    assert compiled.warnings == ()
    first = compiled.rules[0]
    assert first.namer.metric_name_for_series("container_cpu_usage_seconds_total") == "cpu_usage"
    assert first.keeps("container_cpu_usage_seconds_total")
    assert not first.keeps("container_memory_working_set_bytes")
    query = first.query.build(
        "container_cpu_usage_seconds_total",
        GroupResource("", "pods"),
        "default",
        ["p1", "p2"],
        EVERYTHING,
    )
    assert query == (
        'sum(rate(container_cpu_usage_seconds_total{namespace="default",pod=~"p1|p2",'
        'container!="POD"}[5m])) by (pod)'
    )
    # The fourth rule names gauges by the whole series name ($0 of ".*").
    assert compiled.rules[3].namer.metric_name_for_series("queue_depth") == "queue_depth"


def test_sample_config_warnings() -> None:
    compiled = load_rules(CONFIG_DIR / "sample-config.yaml")
    warnings = {w.path: w.reason for w in compiled.warnings}
    assert "compares literally" in warnings["rules[2].seriesQuery"]
    assert "not in the built-in resource table" in warnings["rules[3].resources.overrides.brand"]
    assert "no label maps to namespaces" in warnings["externalRules[0].resources"]
    assert "externalRules[1].resources" not in warnings
    external = compiled.external_rules[1]
    assert external.query.build_external("queue_depth", "default", parse_selector("topic=a")) == (
        'sum(queue_depth{topic="a"}) by (name)'
    )


def test_config_walkthrough() -> None:
    rule = load_rules(CONFIG_DIR / "config-walkthrough.yaml").rules[0]
    assert rule.namer.metric_name_for_series("http_requests_total") == "http_requests_per_second"
    assert rule.converter.resources_for_series(["kubernetes_namespace", "kubernetes_pod_name"]) == [
        GroupResource("", "namespaces"),
        GroupResource("", "pods"),
    ]


def test_resource_rules() -> None:
    compiled = load_rules(CONFIG_DIR / "resource-rules.yaml")
    assert compiled.resource_rules is not None
    cpu = compiled.resource_rules.cpu
    assert compiled.resource_rules.window_seconds == 180
    query = cpu.container_query.build(
        "", GroupResource("", "pods"), "ns", ["p1"], EVERYTHING, [cpu.container_label]
    )
    assert (
        'rate(container_cpu_usage_seconds_total{container!="",namespace="ns",pod="p1"}[3m])'
        in query
    )
    assert query.startswith("sum by (pod,container) (")


@pytest.mark.parametrize(
    ("text", "path", "reason"),
    [
        pytest.param("rules:\n- {seriesQuery: x, metricsQuery: y, name: {matches: '(a'}}\n", "rules[0].name.matches", "error parsing regexp: missing closing ): `(a`", id="bad-name-regex"),
        pytest.param("rules:\n- {seriesQuery: x, metricsQuery: y, seriesFilters: [{isNot: '[a'}]}\n", "rules[0].seriesFilters[0]", "error parsing regexp: missing closing ]: `[a`", id="bad-filter-regex"),
        pytest.param("rules:\n- {seriesQuery: x, metricsQuery: y, seriesFilters: [{is: a, isNot: b}]}\n", "rules[0].seriesFilters[0]", 'cannot have both an `is` ("a") and `isNot` ("b") expression in a single filter', id="filter-with-both"),
        pytest.param("rules:\n- {seriesQuery: x, metricsQuery: y, seriesFilters: [{}]}\n", "rules[0].seriesFilters[0]", "must have either an `is` or `isNot` expression in a filter", id="filter-with-neither"),
        pytest.param("rules:\n- {seriesQuery: x, metricsQuery: '<<.Series'}\n", "rules[0].metricsQuery", "unable to parse metrics query template", id="template-syntax"),
        pytest.param("rules:\n- {seriesQuery: x, metricsQuery: '<<if>>'}\n", "rules[0].metricsQuery", "missing value for if", id="template-parse-error"),
        pytest.param("rules:\n- {seriesQuery: x, metricsQuery: '<<$x>>'}\n", "rules[0].metricsQuery", 'undefined variable "$x"', id="template-undefined-variable"),
        pytest.param("rules:\n- {seriesQuery: x, metricsQuery: '<<join .GroupBySlice \",\">>'}\n", "rules[0].metricsQuery", 'function "join" not defined', id="template-unknown-function"),
        pytest.param("rules:\n- {seriesQuery: x, metricsQuery: y, resources: {template: '<<.Group>>'}}\n", "rules[0].resources.template", "must include at least `<<.Resource>>`", id="resource-template-without-resource"),
        pytest.param("rules:\n- {seriesQuery: x, metricsQuery: y, name: {matches: '(a)(b)'}}\n", "rules[0].name.matches", "must specify an 'as' value", id="as-required"),
        pytest.param("rules:\n- {metricsQuery: y}\n", "rules[0].seriesQuery", "is required", id="missing-series-query"),
        pytest.param("externalRules:\n- {metricsQuery: y, resources: {namespaced: false}}\n", "externalRules[0].seriesQuery", "is required", id="missing-external-series-query"),
        pytest.param("resourceRules:\n  cpu: {containerQuery: '<<.Series', resources: {template: '<<.Resource>>'}}\n", "resourceRules.cpu.containerQuery", "unable to parse metrics query template", id="resource-template-syntax"),
        pytest.param("resourceRules:\n  memory: {resources: {template: '<<.Group>>'}}\n", "resourceRules.memory.resources.template", "must include at least `<<.Resource>>`", id="resource-rule-template-without-resource"),
    ],
)  # fmt: skip
def test_load_time_errors(tmp_path: Path, text: str, path: str, reason: str) -> None:
    errors = errors_of(tmp_path, text)
    assert [(p, reason in r) for p, _, r in errors] == [(path, True)], errors


def test_unknown_override_is_an_error_against_a_cluster(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("resourceRules:\n  cpu: {resources: {overrides: {team: {resource: teams}}}}\n")
    with pytest.raises(ConfigError) as excinfo:
        load_rules(path, require_known_resources=True)
    assert [(i.path, i.reason.split(":")[0]) for i in excinfo.value.issues] == [
        ("resourceRules.cpu.resources.overrides.team", "unable to normalize group-resource")
    ]


def test_errors_of_decoding_and_compiling_are_reported_together(tmp_path: Path) -> None:
    errors = errors_of(
        tmp_path,
        """
        rules:
        - metricQuery: y
          metricsQuery: x
        - seriesQuery: z
          metricsQuery: q
          name: {matches: "(a"}
        """,
    )
    assert [(p, line) for p, line, _ in errors] == [
        ("rules[0].metricQuery", 3),
        ("rules[0].seriesQuery", 3),  # missing: reported at the rule that lacks it
        ("rules[1].name.matches", 7),
    ]


def test_config_error_message_names_file_path_and_reason(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_text(tmp_path, "rules:\n- {seriesQuery: x, metricsQuery: y, name: {matches: '(a'}}\n")
    message = str(excinfo.value)
    assert f"{tmp_path / 'config.yaml'}:2: rules[0].name.matches: error parsing regexp" in message
    assert message.startswith(f"invalid config file {tmp_path / 'config.yaml'} (1 error):")


@pytest.mark.parametrize(
    ("text", "path", "reason"),
    [
        pytest.param("rules:\n- {seriesQuery: x, metricsQuery: y, name: {matches: '^(.*)_total$', as: '$1_per_second'}, resources: {template: '<<.Resource>>'}}\n", "rules[0].name.as", "did you mean ${1}_per_second?", id="greedy-group-name"),
        pytest.param("rules:\n- {seriesQuery: x, metricsQuery: y}\n", "rules[0].resources", "defines no metrics", id="no-resources"),
        pytest.param("rules:\n- {seriesQuery: x, metricsQuery: y, resources: {template: '<<.Resource>>', namespaced: false}}\n", "rules[0].resources.namespaced", "ignored for rules", id="namespaced-on-custom-rule"),
        pytest.param("externalRules:\n- {seriesQuery: x, metricsQuery: y}\n", "externalRules[0].resources", "no label maps to namespaces", id="external-namespace-unmapped"),
        pytest.param("rules:\n- {seriesQuery: '{__name__=\"^foo.*\"}', metricsQuery: y, resources: {template: '<<.Resource>>'}}\n", "rules[0].seriesQuery", 'for a regular expression use =~', id="regex-behind-equals"),
        pytest.param("{}\n", "", "defines no rules", id="empty-config"),
        pytest.param("rules:\n- {seriesQuery: x, metricsQuery: y, resources: {overrides: {svc: {resource: service}}}}\n", "rules[0].resources", "namespaced resources (services)", id="custom-namespace-unmapped"),
    ],
)  # fmt: skip
def test_warnings(tmp_path: Path, text: str, path: str, reason: str) -> None:
    compiled = load_text(tmp_path, text)
    assert [(w.path, reason in w.reason) for w in compiled.warnings] == [(path, True)], (
        compiled.warnings
    )


def test_rule_kinds_and_paths(tmp_path: Path) -> None:
    compiled = load_text(
        tmp_path,
        """
        rules:
        - {seriesQuery: a, metricsQuery: q, resources: {template: "<<.Resource>>"}}
        externalRules:
        - {seriesQuery: b, metricsQuery: q, resources: {namespaced: false}}
        """,
    )
    assert [(r.kind, r.path) for r in (*compiled.rules, *compiled.external_rules)] == [
        (RuleKind.CUSTOM, "rules[0]"),
        (RuleKind.EXTERNAL, "externalRules[0]"),
    ]
    assert not compiled.external_rules[0].query.namespaced


AS_IN_GO = "(the Go adapter starts with this config and fails these requests the same way)"
CUSTOM_404 = (
    "the rule's metrics are listed, but every request for them is answered 404 "
    '"the server could not find the metric ..."'
)
POD_EFFECT = (
    "no pod metrics can be queried: metrics.k8s.io lists of pods come back without any pod "
    "and a named pod is 404"
)
NODE_EFFECT = (
    "no node metrics can be queried: metrics.k8s.io lists of nodes come back empty and a named "
    "node is 404"
)


def test_empty_metrics_query_loads_with_a_warning_and_never_builds(tmp_path: Path) -> None:
    compiled = load_text(
        tmp_path,
        """
        rules:
        - seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
          resources: {template: "<<.Resource>>"}
        externalRules:
        - seriesQuery: queue_depth
          metricsQuery: ""
          resources: {namespaced: false}
        """,
    )
    assert [(w.path, w.line, w.reason) for w in compiled.warnings] == [
        ("rules[0].metricsQuery", 3, f"is empty, so {CUSTOM_404} {AS_IN_GO}"),
        (
            "externalRules[0].metricsQuery",
            7,
            "is empty, so the rule's metrics are listed, but every request for them is answered "
            f'500 "unable to fetch metrics" {AS_IN_GO}',
        ),
    ]
    custom, external = compiled.rules[0], compiled.external_rules[0]
    assert custom.query.template.source == ""
    with pytest.raises(UnusableQueryError, match=r"^rules\[0\]\.metricsQuery is empty$"):
        custom.query.build("http_requests_total", PODS, "ns", ["p"], EVERYTHING)
    with pytest.raises(UnusableQueryError, match=r"^externalRules\[0\]\.metricsQuery is empty$"):
        external.query.build_external("queue_depth", "ns", EVERYTHING)


def test_template_mistake_go_finds_only_when_executing_loads_with_a_warning(
    tmp_path: Path,
) -> None:
    # Go's parser accepts an unknown field; Go fails on it when executing reaches it.
    compiled = load_text(
        tmp_path,
        """
        rules:
        - seriesQuery: x
          metricsQuery: 'sum(<<if .LabelValuesByName.nope>><<.Serie>><<else>><<.Series>><<end>>)'
          resources: {template: '<<.Resource>>'}
        externalRules:
        - seriesQuery: y
          metricsQuery: '<<.Series>><<if eq .Series "bad">><<index .GroupBySlice 1 2 3>><<end>>'
          resources: {namespaced: false}
        """,
    )
    exec_error = (
        'template: metrics-query:1:36: executing "metrics-query" at <.Serie>: can\'t evaluate '
        "field Serie in type naming.queryTemplateArgs"
    )
    assert [(w.path, w.line, w.reason) for w in compiled.warnings] == [
        (
            "rules[0].metricsQuery",
            4,
            f"has a mistake Go reports only when executing the template reaches it ({exec_error}), "
            'so each request whose query reaches it is answered 404 "the server could not find '
            f'the metric ..." {AS_IN_GO}',
        ),
    ]
    query = compiled.rules[0].query
    assert query.build("x", PODS, "ns", ["p"], EVERYTHING) == "sum(x)"
    selector = parse_selector("nope=1")
    with pytest.raises(NamingError) as excinfo:
        query.build("x", PODS, "ns", ["p"], selector)
    assert not isinstance(excinfo.value, UnusableQueryError)
    assert str(excinfo.value) == exec_error
    # A mistake the types do not show (index into a string) is found by executing only.
    external = compiled.external_rules[0].query
    assert external.build_external("ok", "ns", EVERYTHING) == "ok"
    with pytest.raises(NamingError, match="error calling index"):
        external.build_external("bad", "ns", EVERYTHING)


def test_every_deferred_mistake_is_a_warning(tmp_path: Path) -> None:
    compiled = load_text(
        tmp_path,
        """
        rules:
        - seriesQuery: x
          metricsQuery: '<<template "nope">><<if false>><<len>><<end>>'
          resources: {template: '<<.Resource>><<if eq .Resource "pod">><<.Kind>><<end>>'}
        resourceRules:
          cpu:
            containerQuery: '<<.Foo>>'
            nodeQuery: x
            resources: {template: '<<.Resource>>'}
            containerLabel: container
          memory:
            containerQuery: x
            nodeQuery: '<<.GroupBy 1>>'
            resources: {template: '<<.Resource>>'}
            containerLabel: container
        """,
    )
    warnings = [(w.path, w.reason.split(" (template: ")[0]) for w in compiled.warnings]
    mistake = "has a mistake Go reports only when executing the template reaches it"
    assert warnings == [
        ("rules[0].resources.template", mistake),
        ("rules[0].metricsQuery", mistake),
        ("rules[0].metricsQuery", mistake),
        ("resourceRules.cpu.containerQuery", mistake),
        ("resourceRules.memory.nodeQuery", mistake),
    ]
    reasons = [w.reason for w in compiled.warnings]
    assert 'executing "resource-label" at <.Kind>: can\'t evaluate field Kind' in reasons[0]
    label_failure = "so each request that needs the label of a resource for which it does fails"
    assert label_failure in reasons[0]
    assert 'template "nope" not defined' in reasons[1]
    assert "wrong number of args for len: want 1 got 0" in reasons[2]
    assert "leaves its pods out of metrics.k8s.io lists, and a named pod is 404" in reasons[3]
    assert "GroupBy has arguments but cannot be invoked as function" in reasons[4]
    assert "leaves its nodes out of metrics.k8s.io lists, and a named node is 404" in reasons[4]
    converter = compiled.rules[0].converter
    assert converter.label_for_resource(GroupResource("apps", "deployments")) == "deployment"
    with pytest.raises(NamingError, match="can't evaluate field Kind"):
        converter.label_for_resource(PODS)


def test_named_templates_in_metrics_query(tmp_path: Path) -> None:
    compiled = load_text(
        tmp_path,
        """
        rules:
        - seriesQuery: x
          resources: {template: '<<.Resource>>'}
          metricsQuery: |
            <<- define "by" ->>
              <<- range $i, $v := . >><<if $i>>, <<end>><<$v>><<end ->>
            <<- end ->>
            sum(<<block "selector" .>><<.Series>>{<<.LabelMatchers>>}<<end>>) by (<<template "by" .GroupBySlice>>)
        """,
    )
    assert compiled.warnings == ()
    query = compiled.rules[0].query.build("x", PODS, "ns", ["p"], EVERYTHING)
    assert query == 'sum(x{namespace="ns",pod="p"}) by (pod)\n'


def test_resource_rules_with_only_cpu_load_with_a_warning(tmp_path: Path) -> None:
    compiled = load_text(
        tmp_path,
        """
        resourceRules:
          cpu:
            containerQuery: sum(rate(c{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)
            nodeQuery: sum(rate(n{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)
            resources: {template: "<<.Resource>>"}
            containerLabel: container
          window: 1m
        """,
    )
    assert [(w.path, w.reason) for w in compiled.warnings] == [
        (
            "resourceRules.memory",
            "is not set, and every pod and node needs both cpu and memory, so no pod or node "
            "metrics can be queried: metrics.k8s.io lists come back empty and a named pod or "
            f"node is 404 {AS_IN_GO}",
        )
    ]
    rules = compiled.resource_rules
    assert rules is not None and rules.window_seconds == 60
    assert rules.cpu.container_query.build("", PODS, "ns", ["p"], EVERYTHING, ["container"]) == (
        'sum(rate(c{namespace="ns",pod="p"}[1m])) by (pod,container)'
    )
    with pytest.raises(NamingError):  # no label for namespaces, and no query
        rules.memory.container_query.build("", PODS, "ns", ["p"], EVERYTHING, [""])
    with pytest.raises(NamingError):
        rules.memory.node_query.build("", NODES, "", ["n"], EVERYTHING)


def test_partial_resource_rules_load_with_warnings(tmp_path: Path) -> None:
    compiled = load_text(
        tmp_path,
        """
        resourceRules:
          cpu:
            containerQuery: sum(c{<<.LabelMatchers>>}) by (<<.GroupBy>>)
            resources: {overrides: {pod: {resource: pod}}}
          memory:
            containerQuery: sum(m{<<.LabelMatchers>>}) by (<<.GroupBy>>)
            nodeQuery: ""
            resources: {template: "<<.Resource>>"}
            containerLabel: container
        """,
    )
    unmapped = "unable to convert resource {} into label: no generic resource label form specified for this metric"
    assert [(w.path, w.line, w.reason) for w in compiled.warnings] == [
        ("resourceRules.cpu.nodeQuery", 4, f"is empty, so {NODE_EFFECT} {AS_IN_GO}"),
        (
            "resourceRules.cpu.resources",
            5,
            f"maps no label to namespaces ({unmapped.format('namespaces')}), so {POD_EFFECT} "
            f"{AS_IN_GO}; add overrides for the pod and namespace labels",
        ),
        (
            "resourceRules.cpu.resources",
            5,
            f"maps no label to nodes ({unmapped.format('nodes')}), so {NODE_EFFECT} {AS_IN_GO}; "
            "add an override for the node label",
        ),
        (
            "resourceRules.cpu.containerLabel",
            4,
            'is empty, so pod queries group by "pod," and each pod reports one container named '
            '"" (as in the Go adapter); set it to the label that holds the container name, such '
            "as container",
        ),
        ("resourceRules.memory.nodeQuery", 8, f"is empty, so {NODE_EFFECT} {AS_IN_GO}"),
    ]
    rules = compiled.resource_rules
    assert rules is not None
    # As Go renders it: an empty container label leaves a trailing comma, which PromQL accepts.
    assert rules.cpu.container_query.build("", PODS, "", ["p"], EVERYTHING, [""]) == (
        'sum(c{pod="p"}) by (pod,)'
    )


def test_ignored_documents_are_warnings_of_the_loaded_config(tmp_path: Path) -> None:
    compiled = load_text(tmp_path, "{}\n---\nrules: []\n")
    assert [(w.path, w.line, w.reason.split(":")[0]) for w in compiled.warnings] == [
        ("", 2, "another YAML document starts here and is ignored"),
        ("", None, "defines no rules, externalRules or resourceRules"),
    ]


def test_empty_resource_rules_still_serve_metrics_k8s_io(tmp_path: Path) -> None:
    # Present but empty: Go installs metrics.k8s.io, and every pod and node lacks metrics.
    compiled = load_text(tmp_path, "resourceRules: {}\n")
    assert compiled.resource_rules is not None
    assert [(w.path, w.reason.split(",")[0]) for w in compiled.warnings] == [
        ("resourceRules.cpu", "is not set"),
        ("resourceRules.memory", "is not set"),
    ]


def series_query_warnings(tmp_path: Path, series_query: str) -> list[str]:
    quoted = series_query.replace("'", "''")
    compiled = load_text(
        tmp_path,
        f"rules:\n- {{seriesQuery: '{quoted}', metricsQuery: y, resources: {{template: "
        "'<<.Resource>>'}}\n",
    )
    return [w.reason for w in compiled.warnings if w.path == "rules[0].seriesQuery"]


@pytest.mark.parametrize(
    ("series_query", "matcher"),
    [
        pytest.param('{__name__!="^container_.*"}', '__name__!="^container_.*"', id="anchored"),
        pytest.param('up{job = "a.+b"}', 'job="a.+b"', id="spaces"),
        pytest.param('up{9job="^x"}', 'job="^x"', id="name-after-digits"),
        pytest.param('up{éjob="^x"}', 'job="^x"', id="name-after-other-letters"),
        pytest.param('a{x="^1",y!=".*"}', 'x="^1"', id="first-of-two"),
        pytest.param('up{job=~"^x", pod="a"}', None, id="regex-operator"),
        pytest.param('up{job="x"}', None, id="literal"),
        pytest.param('up{job_x9="^x"', 'job_x9="^x"', id="unclosed-selector"),
    ],
)
def test_regex_behind_equality_warning(
    tmp_path: Path, series_query: str, matcher: str | None
) -> None:
    warnings = series_query_warnings(tmp_path, series_query)
    if matcher is None:
        assert warnings == []
    else:
        assert warnings[0].startswith(f"{matcher} compares literally")


@pytest.mark.parametrize(
    "series_query",
    [
        pytest.param("a" * 100_000, id="long-name"),
        pytest.param('a="' + ".*" * 50_000, id="unterminated-value"),
        pytest.param("a" + " " * 100_000 + "b", id="long-space"),
        pytest.param("9" * 100_000, id="long-number"),
    ],
)
def test_regex_behind_equality_check_is_linear(tmp_path: Path, series_query: str) -> None:
    # Quadratic backtracking took minutes for 100 KB; each of these takes milliseconds.
    start = time.perf_counter()
    assert series_query_warnings(tmp_path, series_query) == []
    assert time.perf_counter() - start < 0.5
