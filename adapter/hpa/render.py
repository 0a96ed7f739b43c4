"""explain-hpa's report as text for people (`-o json` prints the same data as it is)."""

from collections.abc import Mapping
from typing import Any

__all__ = ["render_text"]

_SAMPLES = 10


def _values(values: Any) -> str:
    if isinstance(values, Mapping):
        shown = [f"{k}={v}" for k, v in list(values.items())[:_SAMPLES]]
        more = f" ... ({len(values)} in all)" if len(values) > _SAMPLES else ""
        return ", ".join(shown) + more if shown else "(none)"
    if isinstance(values, list):
        return ", ".join(str(v) for v in values) if values else "(none)"
    return str(values)


def _rules(rules: Mapping[str, Any], out: list[str]) -> None:
    if rules.get("rule"):
        series = f" (series {rules['series']})" if rules.get("series") else ""
        out.append(f"    rule         {rules['rule']}{series}")
    else:
        out.append("    rule         (none serves this metric)")
    for query in rules.get("queries") or ():
        out.append(f"    PromQL       {query['promql']}")
        if "error" in query:
            out.append(f"    Prometheus   error: {query['error']}")
        else:
            out.append(f"    Prometheus   {len(query['samples'])} samples")
    status = rules.get("status")
    if status != 200:
        message = (rules.get("response") or {}).get("message", "")
        out.append(f"    answer       {status} {message}".rstrip())
    out += [f"    log          {line}" for line in rules.get("log") or ()]
    out += [f"    hint         {line}" for line in rules.get("hints") or ()]


def _aggregator(agg: Mapping[str, Any], out: list[str]) -> None:
    service = agg.get("apiService") or {}
    if service.get("found"):
        state = service.get("available")
        why = f" ({service.get('reason')})" if state != "True" and service.get("reason") else ""
        out.append(
            f"  via kube-apiserver  APIService {service['name']} -> {service.get('service')}, "
            f"Available={state}{why}"
        )
    else:
        out.append(
            f"  via kube-apiserver  APIService {service.get('name')}: {service.get('error')}"
        )
    if agg.get("status") == 0:
        out.append("    answer       kube-apiserver cannot be reached")
    elif agg.get("status") == 200:
        out.append(f"    answer       200: {_values(agg.get('values'))}")
    else:
        out.append(f"    answer       {agg.get('status')} {agg.get('error') or ''}".rstrip())


def _metric(entry: Mapping[str, Any], out: list[str]) -> None:
    out.append(f"- metric {entry['index']}: {entry['label']}, target {entry['target']}")
    req = entry.get("request")
    if req is not None:
        out.append(f"  request      GET {req['url']}")
    if entry.get("rules") is not None:
        out.append("  from the rules")
        _rules(entry["rules"], out)
        if entry.get("values") is not None:
            out.append(f"    values       {_values(entry['values'])}")
    if entry.get("aggregator") is not None:
        _aggregator(entry["aggregator"], out)
    calc = entry.get("calculation")
    if calc is not None:
        out.append(f"  arithmetic   current {calc['current']}, ratio {calc['ratio']}")
        out += [f"    {step}" for step in calc["steps"]]
        out.append(f"  proposal     {calc['replicas']} replicas")
    else:
        out.append(f"  proposal     none: {entry.get('error')}")
    for problem in entry.get("diagnosis") or ():
        lead = f"  [{problem['rule']}] " if problem.get("rule") else "  "
        out.append(f"{lead}problem: {problem['problem']}")
        out.append(f"{' ' * len(lead)}fix:     {problem['fix']}")


def _hpa(report: Mapping[str, Any], out: list[str]) -> None:
    target = report["scaleTarget"]
    out.append(
        f"HPA {report['namespace']}/{report['name']} -> {target['kind']}/{target['name']} "
        f"(min {report['minReplicas']}, max {report['maxReplicas']}, "
        f"tolerance {report['tolerance']})"
    )
    if "selector" in target:
        out.append(
            f"  scale        {target['resource']}: spec.replicas {target['specReplicas']}, "
            f"status.replicas {target['statusReplicas']}, selector {target['selector'] or '(none)'}"
        )
    pods = report.get("pods")
    if pods is not None:
        out.append(f"  pods         {pods['count']} ({pods['runningAndReady']} running and ready)")
    if report.get("error"):
        out.append(f"  error        {report['error']}")
    for entry in report.get("metrics") or ():
        _metric(entry, out)
    desired = report.get("desired")
    if desired is not None:
        out.append(
            f"desired replicas: {desired['replicas']} ({desired['reason']}: "
            f"{desired['message']}; from metrics: "
            f"{'none' if desired['fromMetrics'] is None else desired['fromMetrics']})"
        )
        out.append(f"  note: {desired['note']}")
    status = report["status"]
    out.append(
        f"status: currentReplicas {status['currentReplicas']}, desiredReplicas "
        f"{status['desiredReplicas']}"
    )
    for condition in status["conditions"]:
        out.append(
            f"  {condition.get('type')}={condition.get('status')} {condition.get('reason', '')}: "
            f"{condition.get('message', '')}"
        )


def render_text(report: Mapping[str, Any]) -> str:
    lines = [f"prometheus: {report['prometheus']}, kube-apiserver: {report['kubeApiserver']}"]
    lines += [f"warning: {w}" for w in report.get("warnings") or ()]
    if not report["hpas"]:
        lines.append("no HorizontalPodAutoscaler found")
    for hpa in report["hpas"]:
        lines.append("")
        _hpa(hpa, lines)
    return "\n".join(lines) + "\n"
