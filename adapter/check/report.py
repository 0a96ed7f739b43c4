"""`prometheus-adapter check-config`: load a config and explain what each rule does.

For every rule: the series query, the filters (including the one `name.matches` implies),
the naming with its defaults, the label ↔ resource mapping, and the PromQL an example request
renders to. Problems are listed with file, path, line and reason. The report is built as plain
data first, so it prints as text for people or as JSON (`-o json`) for scripts.
"""

import argparse
import asyncio
import json
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from adapter.apimachinery.labels import EVERYTHING
from adapter.check.live import (
    ExplainRequest,
    LiveOptions,
    PrometheusUnreachableError,
    run_live,
)
from adapter.config.errors import ConfigError, ConfigIssue
from adapter.config.schema import PrometheusServer
from adapter.flagparse import parse_value
from adapter.golang.duration import format_go_duration
from adapter.kube.rest_mapper import NAMESPACES, NODES, PODS, GroupResource, NoResourceMatchError
from adapter.naming.errors import NamingError
from adapter.naming.resource_converter import ResourceConverter
from adapter.naming.rules import CompiledConfig, MetricRule, ResourceQuery, load_rules
from adapter.options import FLAGS, prometheus_config
from adapter.prometheus.backends import server_url
from adapter.prometheus.config import PrometheusConfigError
from adapter.providers.shared_queries import sharing_problem
from adapter.redaction import REDACTED, header_forms

__all__ = ["add_live_flags", "check_config_main", "config_report", "render_text"]

EXAMPLE_SERIES = "<series>"
EXAMPLE_NAMESPACE = "default"
_EMPTY = "(empty)"  # shown for an empty template or label; a warning says what follows
_SERVER_FILES = ("tokenFile", "caFile", "clientCertFile", "clientKeyFile")


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


def _singular(converter: ResourceConverter, resource: GroupResource) -> str:
    """The resource's singular name as Kubernetes makes it (the kind, lowercased), or an
    English guess for a resource the built-in table does not know."""
    try:
        return converter.mapper.resource_for(resource).kind.lower()
    except NoResourceMatchError:
        name = resource.resource
        for plural, singular in (("ies", "y"), ("sses", "ss"), ("xes", "x"), ("s", "")):
            if name.endswith(plural):
                return name.removesuffix(plural) + singular
        return name


def _example_object(
    converter: ResourceConverter, resource: GroupResource, suffix: str = "a"
) -> str:
    return f"{_singular(converter, resource)}-{suffix}"


def _custom_example(rule: MetricRule) -> dict[str, Any] | None:
    resource = _example_resource(rule.converter)
    if resource is None:
        return None
    namespaced = rule.converter.is_namespaced(resource)
    namespace = EXAMPLE_NAMESPACE if namespaced else ""
    one, two = (_example_object(rule.converter, resource, suffix) for suffix in "ab")
    names = [one], [one, two]
    example: dict[str, Any] = {"resource": str(resource), "namespace": namespace or None}
    for key, objects in zip(("one", "several"), names, strict=True):
        try:
            query = rule.query.build(EXAMPLE_SERIES, resource, namespace, objects, EVERYTHING)
        except NamingError as exc:
            query = f"error: {exc}"
        example[key] = {"objects": objects, "query": query}
    if namespaced:
        example["namespaceWide"] = _namespace_wide_example(rule, resource)
    return example


def _namespace_wide_example(rule: MetricRule, resource: GroupResource) -> dict[str, Any]:
    """The shared query of --namespace-query-ttl, and whether this rule may use it."""
    try:
        query = rule.query.build(EXAMPLE_SERIES, resource, EXAMPLE_NAMESPACE, None, EVERYTHING)
        label = rule.converter.label_for_resource(resource)
    except NamingError as exc:
        return {"query": f"error: {exc}", "shared": False, "problem": str(exc)}
    problem = sharing_problem(rule.query.template.source, query, label)
    return {"query": query, "shared": problem is None, "problem": problem}


def _external_example(rule: MetricRule) -> dict[str, Any]:
    try:
        query = rule.query.build_external(EXAMPLE_SERIES, EXAMPLE_NAMESPACE, EVERYTHING)
    except NamingError as exc:
        query = f"error: {exc}"
    return {"namespace": EXAMPLE_NAMESPACE, "query": query}


def _server_report(server: PrometheusServer) -> dict[str, Any]:
    """A `prometheusServers` entry as the report shows it: credentials in headers (by the
    header's name) are redacted; files are shown by path."""
    return {
        "name": server.name,
        "url": server_url(server.url),
        "verb": server.verb or None,  # None: --prometheus-verb
        "timeout": None
        if server.timeout_seconds is None
        else format_go_duration(server.timeout_seconds),
        "headers": {
            key: REDACTED if header_forms(key, value) else value for key, value in server.headers
        },
        "tokenFile": server.token_file or None,
        "caFile": server.ca_file or None,
        "clientCertFile": server.client_cert_file or None,
        "clientKeyFile": server.client_key_file or None,
    }


def _rule_report(rule: MetricRule, named: bool = False) -> dict[str, Any]:
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
    if named:  # the config names backends: say which one each rule uses
        report["prometheusServer"] = rule.prometheus_server
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
                "",
                resource,
                namespace,
                [_example_object(rule.converter, resource)],
                EVERYTHING,
                extra,
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
    # Only a config that names backends (not in the Go adapter) gets their fields.
    named = bool(compiled.config.prometheus_servers)
    resource_rules = None
    if compiled.resource_rules is not None:
        rr = compiled.resource_rules
        resource_rules = {
            "window": format_go_duration(rr.window_seconds),
            "cpu": _resource_query_report("cpu", rr.cpu),
            "memory": _resource_query_report("memory", rr.memory),
        }
        if named:
            resource_rules["prometheusServer"] = rr.prometheus_server
    report = {
        "file": compiled.file,
        "valid": True,
        "rules": [_rule_report(r, named) for r in compiled.rules],
        "externalRules": [_rule_report(r, named) for r in compiled.external_rules],
        "resourceRules": resource_rules,
        "warnings": [_issue(w) for w in compiled.warnings],
        "errors": [],
    }
    if named:
        report["prometheusServers"] = [
            _server_report(s) for s in compiled.config.prometheus_servers
        ]
    return report


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


def _block(prefix: str, text: str) -> list[str]:
    """`prefix` and `text`, the lines after the first of a multi-line query indented to line
    up under its first."""
    first, *rest = text.strip().splitlines() or [""]
    return [prefix + first, *(" " * len(prefix) + line for line in rest)]


def _describe(entry: dict[str, Any]) -> str:
    scope = "namespaced" if entry["namespaced"] else "cluster-scoped"
    kind = f"{entry['kind']} {entry['apiVersion']}, " if entry.get("kind") else "unknown kind, "
    return f"{entry['resource']} ({kind}{scope})"


def _render_servers(servers: list[dict[str, Any]], out: list[str]) -> None:
    out.append("prometheusServers (rules without prometheusServer use --prometheus-url):")
    for server in servers:
        details = [
            f"verb {server['verb'] or '(--prometheus-verb)'}",
            f"timeout {server['timeout'] or '(--prometheus-timeout)'}",
        ]
        details += [f"header {k}: {v}" for k, v in server["headers"].items()]
        details += [f"{key} {server[key]}" for key in _SERVER_FILES if server[key]]
        out.append(f"  {server['name']}  {server['url']}")
        out.append(f"    {', '.join(details)}")


def _render_rule(rule: dict[str, Any], out: list[str]) -> None:
    out.append(f"  {rule['path']}")
    if "prometheusServer" in rule:
        out.append(f"    backend      {rule['prometheusServer']}")
    out += _block("    seriesQuery  ", rule["seriesQuery"])
    for f in rule["filters"]:
        out.append(f"    filter       {f}")
    name = rule["name"]
    default = "  (default)" if name["defaultAs"] else ""
    out.append(f"    name         matches {name['matches']}  as {name['as']}{default}")
    if "resources" in rule:
        _render_resources(rule["resources"], out)
    else:
        out.append(f"    namespaced   {str(rule['namespaced']).lower()}")
    out += _block("    metricsQuery ", rule["metricsQuery"].strip() or _EMPTY)
    example = rule["example"]
    if example is None:
        out.append("    example      (none: the rule maps no resources)")
    elif "one" in example:
        where = f" in namespace {example['namespace']}" if example["namespace"] else ""
        out.append(f"    example      {example['resource']}{where}:")
        for key in ("one", "several"):
            objects = ",".join(example[key]["objects"])
            out += _block(f"      {objects}: ", example[key]["query"])
        wide = example.get("namespaceWide")
        if wide is not None and wide["shared"]:
            out += _block("      namespace-wide (--namespace-query-ttl): ", wide["query"])
        elif wide is not None:
            out.append(
                f"      namespace-wide (--namespace-query-ttl): not shared, {wide['problem']}"
            )
    else:
        out += _block(f"    example      namespace {example['namespace']}: ", example["query"])


def _series_text(labels: dict[str, str]) -> str:
    name = labels.get("__name__", "")
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{inner}}}"


def _render_live_rule(rule: dict[str, Any], out: list[str]) -> None:
    on = f"  on {rule['prometheusServer']}" if "prometheusServer" in rule else ""
    out += _block(f"  {rule['path']}  ", rule["seriesQuery"].strip() + on)
    if rule.get("error"):
        out.append(f"    error        {rule['error']}")
        return
    series, filters = rule["series"], rule["filters"]
    examples = ", ".join(f"{e['name']}{{{','.join(e['labels'])}}}" for e in series["examples"])
    more = ", ..." if series["names"] > len(series["examples"]) else ""
    out.append(
        f"    series       {series['count']} series, {series['names']} names"
        + (f": {examples}{more}" if examples else "")
    )
    kept, dropped = filters["kept"], filters["dropped"]
    out.append(f"    kept         {kept['count']}" + "".join(f" {n}" for n in kept["examples"]))
    for d in dropped["examples"]:
        out.append(f"    dropped      {d['series']}  by {d['filter']}")
    if dropped["count"] > len(dropped["examples"]):
        out.append(f"    dropped      ... {dropped['count']} in all")
    for metric in rule["metrics"] or [None]:
        if metric is None:
            text = "(none)"
        elif metric.get("external"):
            scope = "namespaced" if metric["namespaced"] else "not namespaced"
            text = f"{metric['name']} (external, {scope}) from {metric['series']}"
        else:
            on = ", ".join(
                r["resource"] + ("" if r["namespaced"] else " (cluster-scoped)")
                for r in metric["resources"]
            )
            text = f"{metric['name']} on {on} from {metric['series']}"
        out.append(f"    metric       {text}")
    for s in rule["surprising"]:
        out.append(
            f"    surprising   {s['resource']} via label {s['label']!r} ({s['count']} metrics: "
            f"{', '.join(s['metrics'])}); a template maps every label naming a resource (Go #21)"
        )


def _render_explain(ex: dict[str, Any], out: list[str]) -> None:
    out.append(f"explain  GET {ex['path']}")
    if ex["rule"]:
        on = f" on {ex['prometheusServer']}" if "prometheusServer" in ex else ""
        out.append(f"  rule         {ex['rule']} (series {ex['series']}){on}")
        out += _block("  metricsQuery ", ex["metricsQuery"])
    else:
        out.append("  rule         (none: no rule defines this metric)")
    for listing in ex["objects"]:
        found = listing.get("error") or f"{listing.get('series', 0)} series"
        on = f" (on {listing['prometheusServer']})" if "prometheusServer" in listing else ""
        out.append(f"  objects      {' '.join(listing['match'])}{on} -> {found}")
    for query in ex["queries"]:
        on = f" (on {query['prometheusServer']})" if "prometheusServer" in query else ""
        out += _block("  PromQL       ", query["promql"].strip() + on)
        if "error" in query:
            out.append(f"  result       error: {query['error']}")
            continue
        samples = query["samples"]
        out.append(f"  result       {query['resultType']}, {len(samples)} samples")
        out += [f"    {_series_text(x['labels'])} {x['value']}" for x in samples[:20]]
    out.append(f"  status       {ex['status']}")
    out += [f"  log          {message}" for message in ex["log"]]
    out += [f"  hint         {hint}" for hint in ex["hints"]]
    out.append("  response")
    out += ["    " + line for line in json.dumps(ex["response"], indent=2).splitlines()]


def _render_rule_sections(
    doc: dict[str, Any],
    render_rule: Callable[[dict[str, Any], list[str]], None],
    out: list[str],
) -> None:
    for section, api in (
        ("rules", "custom.metrics.k8s.io"),
        ("externalRules", "external.metrics.k8s.io"),
    ):
        if doc[section]:
            out.append(f"{section} ({api}):")
            for rule in doc[section]:
                render_rule(rule, out)


def _producer(entry: dict[str, str]) -> str:
    on = f" on {entry['prometheusServer']}" if "prometheusServer" in entry else ""
    return f"{entry['rule']} ({entry['series']}){on}"


def _render_live(live: dict[str, Any], out: list[str]) -> None:
    out.append(f"live: {live['prometheus']}, series of the last {live['maxAge']}")
    for name, url in live.get("prometheusServers", {}).items():
        out.append(f"  backend {name}: {url}")
    _render_rule_sections(live, _render_live_rule, out)
    advertised = live["advertised"]
    out.append(
        f"advertised: {len(advertised['custom'])} custom metrics, "
        f"{len(advertised['external'])} external metrics"
    )
    for c in live["collisions"]:
        who = ", ".join(_producer(p) for p in c["producers"])
        out.append(
            f"collision: {c['api']} {c['metric']} defined by {who}; "
            f"{_producer(c['winner'])} wins, as in Go the last one does"
        )
    out += [f"warning: {w}" for w in live["warnings"]]
    if live["explain"] is not None:
        _render_explain(live["explain"], out)


def render_text(report: dict[str, Any]) -> str:
    file = report["file"]
    if not report["valid"]:
        count = len(report["errors"])
        lines = [f"{file}: INVALID ({count} error{'' if count == 1 else 's'})"]
        lines += [f"  {_issue_line(file, e)}" for e in report["errors"]]
        return "\n".join(lines) + "\n"
    rr = report["resourceRules"]
    lines = [
        f"{file}: OK: {len(report['rules'])} rules, {len(report['externalRules'])} "
        f"externalRules, {'resourceRules' if rr else 'no resourceRules'}"
    ]
    if "live" in report:
        # Live, the series found replace the offline walk-through (`-o json` has both).
        for warning in report["warnings"]:
            lines.append(f"warning: {_issue_line(file, warning)}")
        _render_live(report["live"], lines)
        return "\n".join(lines) + "\n"
    if "prometheusServers" in report:
        _render_servers(report["prometheusServers"], lines)
    _render_rule_sections(report, _render_rule, lines)
    if rr:
        lines.append(f"resourceRules (metrics.k8s.io), window {rr['window']}:")
        if "prometheusServer" in rr:
            lines.append(f"  backend {rr['prometheusServer']}")
        for key in ("cpu", "memory"):
            q = rr[key]
            lines.append(f"  {key}  containerLabel {q['containerLabel'] or _EMPTY}")
            _render_resources(q["resources"], lines)
            lines += _block("    pod example   ", q["example"]["pods"])
            lines += _block("    node example  ", q["example"]["nodes"])
    for warning in report["warnings"]:
        lines.append(f"warning: {_issue_line(file, warning)}")
    return "\n".join(lines) + "\n"


# The server's Prometheus flags, reused so that names, types and defaults stay identical.
_LIVE_FLAGS = (
    "prometheus-url",
    "prometheus-verb",
    "prometheus-header",
    "prometheus-token-file",
    "prometheus-ca-file",
    "prometheus-client-tls-cert-file",
    "prometheus-client-tls-key-file",
    "prometheus-auth-config",
    "prometheus-auth-incluster",
    "prometheus-timeout",
    "prometheus-max-get-url-length",
    "prometheus-max-response-size",
    "metrics-max-age",
    "metrics-relist-interval",
)


def _go_value(kind: str) -> Callable[[str], Any]:
    """An argparse type parsing a value as the server's flags do (Go's syntax)."""

    def convert(text: str) -> Any:
        try:
            return parse_value(kind, text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def add_live_flags(parser: argparse.ArgumentParser, *, optional_url: bool = True) -> None:
    """The server's Prometheus flags; with `optional_url`, --prometheus-url has no default."""
    title = "Prometheus flags (as the server's"
    group = parser.add_argument_group(
        f"{title}; with --prometheus-url the check is live)" if optional_url else f"{title})"
    )
    specs = {spec.name: spec for spec in FLAGS}
    for name in _LIVE_FLAGS:
        spec = specs[name]
        default = spec.default
        help_text = f"{spec.help} (default {spec.default_text()})"
        if name == "prometheus-url" and optional_url:
            # No default here: without the flag the check stays offline.
            default = None
            help_text = f"{spec.help} Without it, the check is offline."
        kwargs: dict[str, Any] = {"dest": spec.dest, "default": default, "metavar": "string"}
        if spec.kind == "stringArray":
            kwargs.update(action="append", default=list(spec.default))
        elif spec.kind == "bool":
            kwargs.update(nargs="?", const=True, type=_go_value("bool"), metavar="bool")
        elif spec.kind != "string":
            kwargs.update(type=_go_value(spec.kind), metavar=spec.kind)
        group.add_argument(f"--{name}", help=help_text.replace("%", "%%"), **kwargs)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prometheus-adapter check-config",
        description=(
            "Validate prometheus-adapter config files and explain each rule: filters, naming, "
            "resource mapping and example PromQL. With --prometheus-url, also what each rule "
            "does with the series Prometheus has, and (--explain) one request end to end. "
            "Exits 1 when a file is invalid, 2 when Prometheus cannot be reached."
        ),
        allow_abbrev=False,
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="config files to check")
    parser.add_argument("--config", action="append", default=[], help="a config file (repeatable)")
    parser.add_argument("-o", "--output", choices=("text", "json"), default="text")
    add_live_flags(parser)
    explain = parser.add_argument_group("explain one request (needs --prometheus-url)")
    explain.add_argument(
        "--explain",
        metavar="RESOURCE/METRIC",
        help="a custom metric such as pods/http_requests_per_second, or with --external an "
        "external metric name",
    )
    explain.add_argument(
        "--external", action="store_true", help="--explain names an external metric"
    )
    explain.add_argument("--namespace", default="", help="the request's namespace")
    explain.add_argument("--name", default="", help="the object's name (default *: every object)")
    explain.add_argument(
        "--selector", default="", help="labelSelector: which objects (`*` requests)"
    )
    explain.add_argument("--metric-selector", default="", help="metricLabelSelector")
    explain.add_argument(
        "--api-version", choices=("v1beta2", "v1beta1"), default="v1beta2",
        help="custom.metrics.k8s.io version of the response",
    )  # fmt: skip
    return parser


def _explain_request(args: argparse.Namespace, parser: argparse.ArgumentParser) -> ExplainRequest:
    target: str = args.explain
    external = args.external or "/" not in target
    resource, _, metric = target.partition("/")
    if not external and (not resource or not metric or "/" in metric):
        parser.error(f"--explain {target!r}: expected RESOURCE/METRIC or --external METRIC")
    return ExplainRequest(
        target=target,
        external=external,
        namespace=args.namespace,
        name=args.name,
        selector=args.selector,
        metric_selector=args.metric_selector,
        version=args.api_version,
    )


def _add_live(
    args: argparse.Namespace,
    parser: argparse.ArgumentParser,
    checked: list[tuple[dict[str, Any], CompiledConfig | None]],
    stderr: TextIO,
) -> bool:
    """Add the live part to the reports of valid files; False when Prometheus is unreachable."""
    valid = [(report, compiled) for report, compiled in checked if compiled is not None]
    if not valid:
        return True
    explain = _explain_request(args, parser) if args.explain else None
    # As the server: a zero max age means the relist interval.
    max_age = args.metrics_max_age or args.metrics_relist_interval
    try:
        lives = asyncio.run(
            run_live(
                [compiled for _, compiled in valid],
                prometheus_config(args),
                LiveOptions(max_age=max_age, explain=explain),
            )
        )
    except ConfigError as exc:  # a prometheusServers entry whose client cannot be made
        stderr.write(f"error: {exc.describe()}\n")
        return False
    except (PrometheusConfigError, PrometheusUnreachableError) as exc:
        stderr.write(f"error: {exc}\n")
        return False
    for (report, _), live in zip(valid, lives, strict=True):
        report["live"] = live
    return True


def check_config_main(
    argv: Sequence[str], stdout: TextIO = sys.stdout, stderr: TextIO = sys.stderr
) -> int:
    parser = _parser()
    args = parser.parse_args(list(argv))
    files = [*args.config, *args.files]
    if not files:
        parser.error("no config file given (use --config FILE or FILE)")
    if args.explain and args.prometheus_url is None:
        parser.error("--explain needs --prometheus-url")
    checked: list[tuple[dict[str, Any], CompiledConfig | None]] = []
    for file in files:
        try:
            compiled = load_rules(file)
            checked.append((config_report(compiled), compiled))
        except ConfigError as exc:
            checked.append((_error_report(exc), None))
    reachable = True
    if args.prometheus_url is not None:
        reachable = _add_live(args, parser, checked, stderr)
    reports = [report for report, _ in checked]
    if args.output == "json":
        json.dump(reports if len(reports) > 1 else reports[0], stdout, indent=2)
        stdout.write("\n")
    else:
        stdout.write("\n".join(render_text(r) for r in reports))
    if not reachable:
        return 2
    return 0 if all(r["valid"] for r in reports) else 1
