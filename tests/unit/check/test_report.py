"""check-config's live flags and the text rendering of a live report (no Prometheus)."""

import io
import json
from pathlib import Path
from typing import Any

import pytest

from adapter.check import report as check_config
from adapter.check.report import _parser, check_config_main, render_text
from adapter.options import build_parser

CONFIG_DIR = Path(__file__).resolve().parents[3] / "config"

LIVE: dict[str, Any] = {
    "prometheus": "http://prom:9090",
    "maxAge": "10m0s",
    "queries": [{"seriesQuery": "x", "series": 2, "error": None}],
    "rules": [
        {
            "path": "rules[0]",
            "seriesQuery": '{namespace!=""}',
            "series": {
                "count": 2,
                "names": 2,
                "examples": [{"name": "a_total", "labels": ["job", "namespace"]}],
            },
            "filters": {
                "kept": {"count": 1, "examples": ["a_total"]},
                "dropped": {"count": 1, "examples": [{"series": "b", "filter": "is _total$"}]},
            },
            "metrics": [
                {
                    "name": "a",
                    "series": "a_total",
                    "resources": [
                        {"resource": "jobs.batch", "namespaced": True},
                        {"resource": "namespaces", "namespaced": False},
                    ],
                }
            ],
            "surprising": [
                {"resource": "jobs.batch", "label": "job", "count": 1, "metrics": ["a"]}
            ],
        }
    ],
    "externalRules": [
        {"path": "externalRules[0]", "seriesQuery": "q{", "error": "bad_data: parse error"}
    ],
    "advertised": {"custom": ["jobs.batch/a", "namespaces/a"], "external": []},
    "collisions": [
        {
            "api": "custom",
            "metric": "namespaces/a",
            "producers": [
                {"rule": "rules[0]", "series": "a_total"},
                {"rule": "rules[1]", "series": "c_total"},
            ],
            "winner": {"rule": "rules[1]", "series": "c_total"},
            "between": "rules",
        }
    ],
    "warnings": ["externalRules[0]: Prometheus rejected the seriesQuery: bad_data"],
    "explain": {
        "path": "/apis/custom.metrics.k8s.io/v1beta2/namespaces/n/pods/p/a",
        "rule": None,
        "objects": [],
        "queries": [{"promql": "sum(a)", "error": "timeout: deadline"}],
        "status": 500,
        "log": ["unable to fetch metrics from prometheus"],
        "hints": ["close metric names: namespaces/a"],
        "response": {"kind": "Status", "code": 500},
    },
}


def test_live_text_rendering() -> None:
    report = {
        "file": "c.yaml",
        "valid": True,
        "rules": [{}],
        "externalRules": [{}],
        "resourceRules": None,
        "warnings": [],
        "live": LIVE,
    }
    out = render_text(report)
    assert out.startswith("c.yaml: OK: 1 rules, 1 externalRules, no resourceRules\n")
    assert "live: http://prom:9090, series of the last 10m0s" in out
    assert "series       2 series, 2 names: a_total{job,namespace}" in out
    assert "dropped      b  by is _total$" in out
    assert "metric       a on jobs.batch, namespaces (cluster-scoped) from a_total" in out
    assert "surprising   jobs.batch via label 'job'" in out
    assert "error        bad_data: parse error" in out
    assert (
        "collision: custom namespaces/a defined by rules[0] (a_total), rules[1] (c_total); "
        "rules[1] (c_total) wins" in out
    )
    assert "rule         (none: no rule defines this metric)" in out
    assert "result       error: timeout: deadline" in out
    assert "hint         close metric names: namespaces/a" in out
    assert '      "code": 500' in out


def test_live_flags_share_the_servers_defaults() -> None:
    ours = vars(_parser().parse_args(["f.yaml"]))
    server = vars(build_parser().parse_args([]))
    for dest in (
        "prometheus_verb",
        "prometheus_header",
        "prometheus_token_file",
        "prometheus_ca_file",
        "prometheus_client_tls_cert_file",
        "prometheus_client_tls_key_file",
        "prometheus_auth_config",
        "prometheus_auth_incluster",
        "prometheus_timeout",
        "metrics_max_age",
        "metrics_relist_interval",
    ):
        assert ours[dest] == server[dest], dest
    assert ours["prometheus_url"] is None  # offline unless given
    args = _parser().parse_args(
        ["f", "--prometheus-timeout=2s", "--prometheus-header", "A=1", "--prometheus-header=B=2"]
    )
    assert args.prometheus_timeout == 2.0
    assert args.prometheus_header == ["A=1", "B=2"]
    for argv, incluster in (([], False), (["--prometheus-auth-incluster"], True)):
        args = _parser().parse_args(["f", *argv, "--prometheus-auth-incluster=false"])
        assert args.prometheus_auth_incluster is False
        assert _parser().parse_args(["f", *argv]).prometheus_auth_incluster is incluster


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--explain", "pods/x"], "--explain needs --prometheus-url"),
        (["--prometheus-url", "http://x", "--explain", "pods/"], "expected RESOURCE/METRIC"),
    ],
)
def test_explain_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        check_config_main([str(CONFIG_DIR / "demo.yaml"), *argv], stdout=io.StringIO())
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_bad_prometheus_url_exits_2() -> None:
    err = io.StringIO()
    code = check_config_main(
        [str(CONFIG_DIR / "demo.yaml"), "--prometheus-url", "ftp://x"], io.StringIO(), err
    )
    assert code == 2
    assert "invalid Prometheus URL" in err.getvalue()


def test_numeric_prometheus_flags_are_parsed_as_numbers() -> None:
    args = check_config._parser().parse_args(
        ["--prometheus-max-get-url-length=100", "config/demo.yaml"]
    )
    assert args.prometheus_max_get_url_length == 100


def test_reports_whether_each_rule_may_share_namespace_wide_queries(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        """
rules:
- seriesQuery: 'a{namespace!="",pod!=""}'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'
- seriesQuery: 'b{namespace!="",pod!=""}'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  metricsQuery: 'topk(1, <<.Series>>{<<.LabelMatchers>>})'
"""
    )
    out = io.StringIO()
    assert check_config_main(["--config", str(config)], stdout=out) == 0
    lines = [line for line in out.getvalue().splitlines() if "namespace-wide" in line]
    assert lines == [
        '      namespace-wide (--namespace-query-ttl): sum(<series>{namespace="default",pod!=""})'
        " by (pod)",
        "      namespace-wide (--namespace-query-ttl): not shared, it uses 'topk', which relates"
        " series to each other",
    ]


# What the Go adapter starts with: a second document, no metricsQuery, resourceRules with
# only cpu, no containerLabel and no label for nodes.
STARTS_IN_GO = """\
rules:
- seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
externalRules:
- seriesQuery: 'queue_depth{namespace!=""}'
  resources: {overrides: {namespace: {resource: namespace}}}
resourceRules:
  cpu:
    containerQuery: sum(rate(c{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)
    nodeQuery: sum(rate(n{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)
    resources: {overrides: {pod: {resource: pod}, namespace: {resource: namespace}}}
---
rules: []
"""


def test_configs_the_go_adapter_starts_with_are_valid_with_warnings(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(STARTS_IN_GO)
    out = io.StringIO()
    assert check_config_main(["-o", "json", str(config)], stdout=out) == 0
    report = json.loads(out.getvalue())
    assert (report["valid"], report["errors"]) == (True, [])
    warnings = report["warnings"]
    assert [(w["path"], w["line"], w["reason"].split(" ")[:3]) for w in warnings] == [
        ("", 12, ["another", "YAML", "document"]),
        ("rules[0].metricsQuery", 2, ["is", "empty,", "so"]),
        ("externalRules[0].metricsQuery", 5, ["is", "empty,", "so"]),
        ("resourceRules.cpu.resources", 11, ["maps", "no", "label"]),
        ("resourceRules.cpu.containerLabel", 9, ["is", "empty,", "so"]),
        ("resourceRules.memory", 8, ["is", "not", "set,"]),
    ]
    assert "answered 404" in warnings[1]["reason"]
    assert "answered 500" in warnings[2]["reason"]
    assert report["rules"][0]["example"]["one"]["query"] == (
        "error: rules[0].metricsQuery is empty"
    )
    out = io.StringIO()
    assert check_config_main([str(config)], stdout=out) == 0
    text = out.getvalue()
    assert text.startswith(f"{config}: OK: 1 rules, 1 externalRules, resourceRules\n")
    assert "    metricsQuery (empty)\n" in text
    assert "  cpu  containerLabel (empty)\n" in text
    for w in warnings:
        where = f"{config}:{w['line']}: " + (f"{w['path']}: " if w["path"] else "")
        assert f"warning: {where}{w['reason']}\n" in text


def test_template_mistakes_go_finds_only_when_executing_are_warnings(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "rules:\n"
        '- seriesQuery: \'http_requests_total{namespace!="",pod!=""}\'\n'
        "  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}\n"
        '  metricsQuery: \'<<define "sel">><<.Series>>{<<.LabelMatchers>>}<<end>>'
        '<<if .GroupBySlice>>sum(<<template "sel" .>>) by (<<.GroupBy>>)<<else>><<.Serie>><<end>>\'\n'
    )
    out = io.StringIO()
    assert check_config_main(["-o", "json", str(config)], stdout=out) == 0
    report = json.loads(out.getvalue())
    assert (report["valid"], report["errors"]) == (True, [])
    [warning] = report["warnings"]
    assert (warning["path"], warning["line"]) == ("rules[0].metricsQuery", 4)
    assert "can't evaluate field Serie in type naming.queryTemplateArgs" in warning["reason"]
    # The example queries never reach the mistake.
    assert report["rules"][0]["example"]["one"]["query"] == (
        'sum(<series>{namespace="default",pod="pod-a"}) by (pod)'
    )


def _report_text(tmp_path: Path, config_text: str) -> tuple[int, str]:
    config = tmp_path / "config.yaml"
    config.write_text(config_text)
    out = io.StringIO()
    code = check_config_main([str(config)], stdout=out)
    return code, out.getvalue()


@pytest.mark.parametrize(
    ("resource", "example"),
    [
        ("{group: networking.k8s.io, resource: ingresses}", "ingress-a"),
        ("{resource: service}", "service-a"),
        ("{resource: endpoints}", "endpoints-a"),
        ("{group: networking.k8s.io, resource: networkpolicies}", "networkpolicy-a"),
        ("{group: example.com, resource: widgetboxes}", "widgetbox-a"),
        ("{group: example.com, resource: policies}", "policy-a"),
    ],
)
def test_example_objects_have_singular_names(tmp_path: Path, resource: str, example: str) -> None:
    code, text = _report_text(
        tmp_path,
        'rules:\n- seriesQuery: \'x{namespace!="",obj!=""}\'\n'
        f"  resources: {{overrides: {{namespace: {{resource: namespace}}, obj: {resource}}}}}\n"
        "  metricsQuery: sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)\n",
    )
    assert code == 0
    assert f"      {example}: sum(<series>{{" in text


def test_multi_line_queries_stay_indented(tmp_path: Path) -> None:
    code, text = _report_text(
        tmp_path,
        """\
rules:
- seriesQuery: 'x{namespace!="",pod!=""}'
  resources: {template: <<.Resource>>}
  metricsQuery: |
    sum(
      rate(<<.Series>>{<<.LabelMatchers>>}[2m])
    ) by (<<.GroupBy>>)
""",
    )
    assert code == 0
    assert (
        "    metricsQuery sum(\n"
        "                   rate(<<.Series>>{<<.LabelMatchers>>}[2m])\n"
        "                 ) by (<<.GroupBy>>)\n"
        "    example      pods in namespace default:\n"
        "      pod-a: sum(\n"
        '               rate(<series>{namespace="default",pod="pod-a"}[2m])\n'
        "             ) by (pod)\n"
    ) in text


def test_a_dotted_resource_name_is_refused_with_the_way_to_write_it(tmp_path: Path) -> None:
    # Go resolves {resource: deployments.apps} as a resource named "deployments.apps" in the
    # core group, which no cluster has: it refuses to start. Without a cluster too, then.
    code, text = _report_text(
        tmp_path,
        'rules:\n- seriesQuery: \'x{namespace!="",deployment!=""}\'\n'
        "  resources:\n    overrides:\n      namespace: {resource: namespace}\n"
        "      deployment: {resource: deployments.apps}\n",
    )
    assert code == 1
    assert text.splitlines() == [
        f"{tmp_path / 'config.yaml'}: INVALID (1 error)",
        f"  {tmp_path / 'config.yaml'}:6: rules[0].resources.overrides.deployment: unable to "
        "normalize group-resource: no matches for /, Resource=deployments.apps (a resource "
        "name has no dots; write {group: apps, resource: deployments})",
    ]
