"""Compiling whole configs: the sample files, load-time errors and warnings."""

import textwrap
from pathlib import Path

import pytest

from adapter.config.errors import ConfigError
from adapter.kube.rest_mapper import GroupResource
from adapter.naming.rules import CompiledConfig, RuleKind, load_rules
from adapter.promql.label_selector import EVERYTHING, parse_selector

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
        pytest.param("rules:\n- {seriesQuery: x, metricsQuery: '<<.Serie>>'}\n", "rules[0].metricsQuery", "Serie", id="template-unknown-field"),
        pytest.param("rules:\n- {seriesQuery: x, metricsQuery: '<<join .GroupBySlice \",\">>'}\n", "rules[0].metricsQuery", 'function "join" not defined', id="template-unknown-function"),
        pytest.param("rules:\n- {seriesQuery: x, metricsQuery: y, resources: {template: '<<.Group>>'}}\n", "rules[0].resources.template", "must include at least `<<.Resource>>`", id="resource-template-without-resource"),
        pytest.param("rules:\n- {seriesQuery: x, metricsQuery: y, name: {matches: '(a)(b)'}}\n", "rules[0].name.matches", "must specify an 'as' value", id="as-required"),
        pytest.param("rules:\n- {metricsQuery: y}\n", "rules[0].seriesQuery", "is required", id="missing-series-query"),
        pytest.param("externalRules:\n- {seriesQuery: x}\n", "externalRules[0].metricsQuery", "is required", id="missing-metrics-query"),
        pytest.param("resourceRules:\n  cpu: {containerQuery: a, nodeQuery: b, resources: {template: '<<.Resource>>'}}\n  memory: {containerQuery: a, nodeQuery: b, containerLabel: c, resources: {template: '<<.Resource>>'}}\n", "resourceRules.cpu.containerLabel", "is required", id="container-label-required"),
    ],
)  # fmt: skip
def test_load_time_errors(tmp_path: Path, text: str, path: str, reason: str) -> None:
    errors = errors_of(tmp_path, text)
    assert [(p, reason in r) for p, _, r in errors] == [(path, True)], errors


def test_resource_rules_must_map_pods_namespaces_and_nodes(tmp_path: Path) -> None:
    errors = errors_of(
        tmp_path,
        """
        resourceRules:
          cpu: {containerQuery: a, nodeQuery: b, containerLabel: c, resources: {overrides: {pod: {resource: pod}}}}
          memory: {containerQuery: a, nodeQuery: b, containerLabel: c, resources: {template: "<<.Resource>>"}}
        """,
    )
    assert [(p, r.split(":")[0]) for p, _, r in errors] == [
        ("resourceRules.cpu.resources", "unable to convert resource namespaces into label"),
        ("resourceRules.cpu.resources", "unable to convert resource nodes into label"),
    ]


def test_errors_of_decoding_and_compiling_are_reported_together(tmp_path: Path) -> None:
    errors = errors_of(
        tmp_path,
        """
        rules:
        - seriesQuery: x
          metricQuery: y
        - seriesQuery: z
          metricsQuery: q
          name: {matches: "(a"}
        """,
    )
    assert [(p, line) for p, line, _ in errors] == [
        ("rules[0].metricQuery", 4),
        ("rules[0].metricsQuery", 3),  # missing: reported at the rule that lacks it
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
