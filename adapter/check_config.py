"""`prometheus-adapter check-config`: load a config and explain what each rule does.

For every rule: the series query, the filters (including the one `name.matches` implies),
the naming with its defaults, the label ↔ resource mapping, and the PromQL an example request
renders to. Problems are listed with file, path, line and reason. The report is built as plain
data first, so it prints as text for people or as JSON (`-o json`) for scripts.
"""

import argparse
import json
import sys
import textwrap
from collections.abc import Sequence
from typing import Any, TextIO

from adapter.config.errors import ConfigError, ConfigIssue
from adapter.kube.rest_mapper import NAMESPACES, NODES, PODS, GroupResource, NoResourceMatchError
from adapter.naming.errors import NamingError
from adapter.naming.resource_converter import ResourceConverter
from adapter.naming.rules import CompiledConfig, MetricRule, ResourceQuery, load_rules
from adapter.promql.duration import format_go_duration
from adapter.promql.label_selector import EVERYTHING

__all__ = ["check_config_main", "config_report", "render_text"]

EXAMPLE_SERIES = "<series>"
EXAMPLE_NAMESPACE = "default"


def _issue(issue: ConfigIssue) -> dict[str, Any]:
    return {"path": issue.path, "line": issue.line, "reason": issue.reason}


def _resource_entry(
    converter: ResourceConverter, label: str, resource: GroupResource
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "label": label,
        "resource": str(resource),
        "namespaced": converter.is_namespaced(resource),
    }
    try:
        info = converter.mapper.resource_for(resource)
        entry["kind"] = info.kind
        entry["apiVersion"] = info.api_version
    except NoResourceMatchError:
        entry["kind"] = None
    return entry


def _resources(converter: ResourceConverter) -> dict[str, Any]:
    """Overrides, and for a template the labels it gives the known resources."""
    report: dict[str, Any] = {
        "overrides": [
            _resource_entry(converter, label, resource)
            for label, resource in converter.overrides.items()
        ],
        "template": converter.template.source if converter.template else None,
        "templateLabels": [],
    }
    if converter.template is not None:
        for info in converter.mapper.known_resources():
            resource = info.group_resource
            if resource in converter.overrides.values():
                continue
            try:
                label = converter.label_for_resource(resource)
            except NamingError:
                continue
            if converter.resource_for_label(label) == resource:
                report["templateLabels"].append(_resource_entry(converter, label, resource))
    return report


def _example_resource(converter: ResourceConverter) -> GroupResource | None:
    """A resource to render an example request for: pods when the rule maps them, else the
    first override that is not namespaces."""
    mapped = list(converter.overrides.values())
    if converter.template is not None or PODS in mapped:
        return PODS
    others = [r for r in mapped if r != NAMESPACES] or mapped
    return others[0] if others else None


def _example_object(resource: GroupResource, suffix: str = "a") -> str:
    return f"{resource.resource.removesuffix('s')}-{suffix}"


def _custom_example(rule: MetricRule) -> dict[str, Any] | None:
    resource = _example_resource(rule.converter)
    if resource is None:
        return None
    namespaced = rule.converter.is_namespaced(resource)
    namespace = EXAMPLE_NAMESPACE if namespaced else ""
    names = [_example_object(resource)], [_example_object(resource), _example_object(resource, "b")]
    example: dict[str, Any] = {"resource": str(resource), "namespace": namespace or None}
    for key, objects in zip(("one", "several"), names, strict=True):
        try:
            query = rule.query.build(EXAMPLE_SERIES, resource, namespace, objects, EVERYTHING)
        except NamingError as exc:
            query = f"error: {exc}"
        example[key] = {"objects": objects, "query": query}
    return example


def _external_example(rule: MetricRule) -> dict[str, Any]:
    try:
        query = rule.query.build_external(EXAMPLE_SERIES, EXAMPLE_NAMESPACE, EVERYTHING)
    except NamingError as exc:
        query = f"error: {exc}"
    return {"namespace": EXAMPLE_NAMESPACE, "query": query}


def _rule_report(rule: MetricRule) -> dict[str, Any]:
    report: dict[str, Any] = {
        "path": rule.path,
        "seriesQuery": rule.series_query,
        "filters": [f.describe() for f in rule.filters],
        "name": {
            "matches": rule.namer.matches.pattern,
            "as": rule.namer.as_,
            "defaultAs": rule.namer.default_as,
        },
        "metricsQuery": rule.query.template.source,
    }
    if rule.source.name.matches:
        report["filters"][-1] += " (from name.matches)"
    if rule.kind == "rules":
        report["resources"] = _resources(rule.converter)
        report["example"] = _custom_example(rule)
    else:
        report["namespaced"] = rule.query.namespaced
        report["example"] = _external_example(rule)
    return report


def _resource_query_report(name: str, rule: ResourceQuery) -> dict[str, Any]:
    examples: dict[str, str] = {}
    for key, query, resource, namespace, extra in (
        ("pods", rule.container_query, PODS, EXAMPLE_NAMESPACE, (rule.container_label,)),
        ("nodes", rule.node_query, NODES, "", ()),
    ):
        try:
            examples[key] = query.build(
                "", resource, namespace, [_example_object(resource)], EVERYTHING, extra
            )
        except NamingError as exc:
            examples[key] = f"error: {exc}"
    return {
        "resource": name,
        "containerLabel": rule.container_label,
        "containerQuery": rule.container_query.template.source,
        "nodeQuery": rule.node_query.template.source,
        "resources": _resources(rule.converter),
        "example": examples,
    }


def config_report(compiled: CompiledConfig) -> dict[str, Any]:
    resource_rules = None
    if compiled.resource_rules is not None:
        rr = compiled.resource_rules
        resource_rules = {
            "window": format_go_duration(rr.window_seconds),
            "cpu": _resource_query_report("cpu", rr.cpu),
            "memory": _resource_query_report("memory", rr.memory),
        }
    return {
        "file": compiled.file,
        "valid": True,
        "rules": [_rule_report(r) for r in compiled.rules],
        "externalRules": [_rule_report(r) for r in compiled.external_rules],
        "resourceRules": resource_rules,
        "warnings": [_issue(w) for w in compiled.warnings],
        "errors": [],
    }


def _error_report(error: ConfigError) -> dict[str, Any]:
    return {
        "file": error.file,
        "valid": False,
        "errors": [_issue(i) for i in error.issues],
    }


def _issue_line(file: str, issue: dict[str, Any]) -> str:
    return ConfigIssue(issue["path"], issue["reason"], issue["line"]).format(file)


def _render_resources(resources: dict[str, Any], out: list[str]) -> None:
    rows = [f"override {e['label']} -> {_describe(e)}" for e in resources["overrides"]]
    if resources["template"] is not None:
        rows.append(f"template {resources['template']}: every label that names a resource:")
        named = [f"{e['label']}->{e['resource']}" for e in resources["templateLabels"]]
        rows += textwrap.wrap(
            ", ".join(named), width=80, initial_indent="  ", subsequent_indent="  "
        )
    for i, row in enumerate(rows or ["(none)"]):
        out.append(f"    {'resources' if i == 0 else '':<12} {row}")


def _describe(entry: dict[str, Any]) -> str:
    scope = "namespaced" if entry["namespaced"] else "cluster-scoped"
    kind = f"{entry['kind']} {entry['apiVersion']}, " if entry.get("kind") else "unknown kind, "
    return f"{entry['resource']} ({kind}{scope})"


def _render_rule(rule: dict[str, Any], out: list[str]) -> None:
    out.append(f"  {rule['path']}")
    out.append(f"    seriesQuery  {rule['seriesQuery']}")
    for f in rule["filters"]:
        out.append(f"    filter       {f}")
    name = rule["name"]
    default = "  (default)" if name["defaultAs"] else ""
    out.append(f"    name         matches {name['matches']}  as {name['as']}{default}")
    if "resources" in rule:
        _render_resources(rule["resources"], out)
    else:
        out.append(f"    namespaced   {str(rule['namespaced']).lower()}")
    out.append(f"    metricsQuery {rule['metricsQuery'].strip()}")
    example = rule["example"]
    if example is None:
        out.append("    example      (none: the rule maps no resources)")
    elif "one" in example:
        where = f" in namespace {example['namespace']}" if example["namespace"] else ""
        out.append(f"    example      {example['resource']}{where}:")
        for key in ("one", "several"):
            objects = ",".join(example[key]["objects"])
            out.append(f"      {objects}: {example[key]['query'].strip()}")
    else:
        out.append(f"    example      namespace {example['namespace']}: {example['query'].strip()}")


def render_text(report: dict[str, Any]) -> str:
    file = report["file"]
    if not report["valid"]:
        lines = [f"{file}: INVALID ({len(report['errors'])} errors)"]
        lines += [f"  {_issue_line(file, e)}" for e in report["errors"]]
        return "\n".join(lines) + "\n"
    rr = report["resourceRules"]
    lines = [
        f"{file}: OK: {len(report['rules'])} rules, {len(report['externalRules'])} "
        f"externalRules, {'resourceRules' if rr else 'no resourceRules'}"
    ]
    for section, api in (
        ("rules", "custom.metrics.k8s.io"),
        ("externalRules", "external.metrics.k8s.io"),
    ):
        if report[section]:
            lines.append(f"{section} ({api}):")
            for rule in report[section]:
                _render_rule(rule, lines)
    if rr:
        lines.append(f"resourceRules (metrics.k8s.io), window {rr['window']}:")
        for key in ("cpu", "memory"):
            q = rr[key]
            lines.append(f"  {key}  containerLabel {q['containerLabel']}")
            _render_resources(q["resources"], lines)
            lines.append(f"    pod example   {q['example']['pods'].strip()}")
            lines.append(f"    node example  {q['example']['nodes'].strip()}")
    for warning in report["warnings"]:
        lines.append(f"warning: {_issue_line(file, warning)}")
    return "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prometheus-adapter check-config",
        description=(
            "Validate prometheus-adapter config files and explain each rule: filters, naming, "
            "resource mapping and example PromQL. Exits 1 when a file is invalid."
        ),
        allow_abbrev=False,
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="config files to check")
    parser.add_argument("--config", action="append", default=[], help="a config file (repeatable)")
    parser.add_argument("-o", "--output", choices=("text", "json"), default="text")
    return parser


def check_config_main(argv: Sequence[str], stdout: TextIO = sys.stdout) -> int:
    args = _parser().parse_args(list(argv))
    files = [*args.config, *args.files]
    if not files:
        _parser().error("no config file given (use --config FILE or FILE)")
    reports = []
    for file in files:
        try:
            reports.append(config_report(load_rules(file)))
        except ConfigError as exc:
            reports.append(_error_report(exc))
    if args.output == "json":
        json.dump(reports if len(reports) > 1 else reports[0], stdout, indent=2)
        stdout.write("\n")
    else:
        stdout.write("\n".join(render_text(r) for r in reports))
    return 0 if all(r["valid"] for r in reports) else 1
