"""Explain HPAs end to end: per metric the controller's request, the answer from these rules
(in-process, through the server's own providers, recording the PromQL) and through the
aggregator, the controller's arithmetic, and a diagnosis; then the HPA's replica count.

Everything is plain data for `adapter.hpa.render` (text) and `-o json`.
"""

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from adapter.apimachinery.labels import SelectorError, parse_selector
from adapter.apimachinery.quantity import QuantityError, parse_quantity_milli
from adapter.check.live import (
    Discovery,
    ExplainRequest,
    LiveOptions,
    RecordingClient,
    captured_provider_logs,
    explain,
    rules_live,
)
from adapter.golang.duration import format_go_duration
from adapter.hpa import decision as decision_rules
from adapter.hpa import replicas as calc
from adapter.hpa.cluster import (
    Answer,
    api_service,
    get_scale,
    list_pods,
    through_aggregator,
)
from adapter.hpa.diagnosis import aggregator_problems, closest_rules, pod_problems
from adapter.hpa.requests import RESOURCE_GROUP, MetricRequest, build_request
from adapter.hpa.spec import HPA, MetricSpec, SpecError, parse_pod, parse_time
from adapter.kube.api import KubeAPI, KubeAPIError
from adapter.kube.object_cache import APIObjectLister, ObjectMeta
from adapter.kube.rest_mapper import RESTMapper
from adapter.naming.rules import CompiledConfig
from adapter.prometheus.backends import DEFAULT_SERVER, client_for_rule
from adapter.prometheus.client import PrometheusClient
from adapter.providers.resource import EVERY_FIELD, FieldSelector, ResourceMetricsProvider
from adapter.server.resource_api import pod_metrics_json

__all__ = ["Context", "explain_hpa"]


@dataclass
class Context:
    """What every HPA's explanation shares."""

    compiled: CompiledConfig
    discovery: Discovery
    client: PrometheusClient
    api: KubeAPI
    mapper: RESTMapper
    options: LiveOptions
    custom_version: str
    user: str  # who kube-apiserver sees, for RBAC fixes
    # The clients of the config's prometheusServers, by name.
    servers: dict[str, PrometheusClient] = field(default_factory=dict)
    lives: dict[str, dict[str, Any]] = field(default_factory=dict)
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    clock: Any = time.time

    def __post_init__(self) -> None:
        self.lives = {live["path"]: live for live in rules_live(self.compiled, self.discovery)}

    async def api_service(self, name: str) -> dict[str, Any]:
        if name not in self.services:
            self.services[name] = await api_service(self.api, name)
        return self.services[name]


class _ListedPods:
    """ResourceObjects over the pods already listed for the HPA (metrics.k8s.io lists only
    Running pods)."""

    def __init__(self, pods: Sequence[Mapping[str, Any]]) -> None:
        self._pods = [
            ObjectMeta.from_object(p)
            for p in pods
            if (p.get("status") or {}).get("phase") == "Running"
        ]

    async def pods(
        self, namespace: str, label_selector: Any, field_selector: FieldSelector
    ) -> list[ObjectMeta]:
        return [p for p in self._pods if label_selector.matches(p.labels)]

    async def nodes(self, label_selector: Any, field_selector: FieldSelector) -> list[ObjectMeta]:
        return []


# --- the rules' answer ----------------------------------------------------------------------


async def _rules_answer(
    ctx: Context, hpa: HPA, metric: MetricSpec, req: MetricRequest, pods: Sequence[Any]
) -> dict[str, Any]:
    if req.group == RESOURCE_GROUP:
        return await _resource_answer(ctx, hpa.namespace, req, pods)
    external = metric.type == "External"
    explain_req = ExplainRequest(
        target=req.metric if external else f"{req.resource}/{req.metric}",
        external=external,
        namespace=hpa.namespace,
        name=req.name,
        selector=req.params.get("labelSelector", ""),
        metric_selector=req.params.get("metricLabelSelector", ""),
        version=req.version if not external else "v1beta2",
    )
    return await explain(
        explain_req,
        ctx.discovery.registry,
        ctx.client,
        ctx.options,
        objects=APIObjectLister(ctx.api, ctx.mapper),
        mapper=ctx.mapper,
        servers=ctx.servers,
    )


async def _resource_answer(
    ctx: Context, namespace: str, req: MetricRequest, pods: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "api": RESOURCE_GROUP,
        "rule": "resourceRules",
        "series": None,
        "metricsQuery": None,
        "queries": [],
        "status": 200,
        "response": None,
        "log": [],
        "hints": [],
    }
    rules = ctx.compiled.resource_rules
    if rules is None:
        report.update(status=404, rule=None, hints=["the config has no resourceRules"])
        return report
    report["metricsQuery"] = rules.cpu.container_query.template.source
    client = client_for_rule(rules, {DEFAULT_SERVER: ctx.client, **ctx.servers})
    recording = RecordingClient(client)
    provider = ResourceMetricsProvider(rules, recording, _ListedPods(pods), ctx.clock)
    selector = parse_selector(req.params.get("labelSelector", ""))
    with captured_provider_logs() as log:
        found = await provider.pod_metrics(namespace, None, selector, EVERY_FIELD)
    now = ctx.clock()
    report["queries"] = recording.queries
    report["log"] = log
    report["response"] = {
        "kind": "PodMetricsList",
        "apiVersion": f"{RESOURCE_GROUP}/v1beta1",
        "metadata": {},
        "items": [pod_metrics_json(m, now, typed=False) for m in found],
    }
    return report


# --- values out of an answer ----------------------------------------------------------------


def _pod_values(body: Mapping[str, Any] | None, metric: MetricSpec) -> dict[str, calc.PodMetric]:
    """PodMetricsInfo from a MetricValueList (GetRawMetric) or a PodMetricsList
    (getPodMetrics: the containers' usage summed; getContainerMetrics for one container)."""
    values: dict[str, calc.PodMetric] = {}
    for item in (body or {}).get("items") or ():
        timestamp = parse_time(item.get("timestamp")) or 0.0
        if "containers" in item:
            name = (item.get("metadata") or {}).get("name", "")
            total, missing = 0, not item["containers"]
            for container in item["containers"]:
                if metric.container and container.get("name") != metric.container:
                    continue
                usage = (container.get("usage") or {}).get(metric.name)
                if usage is None:
                    missing = True
                    break
                total += parse_quantity_milli(str(usage))
            if not missing:
                window = 60.0
                values[name] = calc.PodMetric(total, timestamp, window)
            continue
        name = (item.get("describedObject") or {}).get("name", "")
        window = float(item.get("windowSeconds") or 60)
        values[name] = calc.PodMetric(parse_quantity_milli(str(item["value"])), timestamp, window)
    return values


def _external_values(body: Mapping[str, Any] | None) -> list[int]:
    return [parse_quantity_milli(str(i["value"])) for i in (body or {}).get("items") or ()]


def _shown(values: Mapping[str, calc.PodMetric] | Sequence[int]) -> Any:
    if isinstance(values, Mapping):
        return {name: calc.milli(v.value) for name, v in sorted(values.items())}
    return [calc.milli(v) for v in values]


# --- the arithmetic -------------------------------------------------------------------------


def _calculate(
    hpa: HPA,
    metric: MetricSpec,
    body: Mapping[str, Any] | None,
    pods: Sequence[calc.Pod],
    spec_replicas: int,
    status_replicas: int,
    now: float,
) -> tuple[calc.Calculation, Any]:
    """computeStatusFor*Metric for one metric; raises ReplicaError as the controller fails."""
    target, tol = metric.target, hpa.tolerances
    if metric.type in ("Resource", "ContainerResource", "Pods"):
        values = _pod_values(body, metric)
        if not values:
            source = "resource" if metric.type != "Pods" else "custom"
            raise calc.ReplicaError(f"no metrics returned from {source} metrics API")
        if metric.type == "Pods" or target.average_value is not None:
            if target.average_value is None:
                raise calc.ReplicaError("the Pods metric has no averageValue target")
            resource = "" if metric.type == "Pods" else metric.name
            result = calc.plain_metric_replicas(
                spec_replicas, target.average_value, values, pods, now, resource, tol
            )
            return result, _shown(values)
        if target.average_utilization is None:
            raise calc.ReplicaError(
                "invalid resource metric source: neither an average utilization target nor an "
                "average value (usage) target was set"
            )
        result = calc.resource_utilization_replicas(
            spec_replicas, target.average_utilization, metric.name, values, pods, now, tol
        )
        return result, _shown(values)
    if metric.type == "Object":
        items: list[Any] = list((body or {}).get("items") or ())
        if len(items) != 1:
            raise calc.ReplicaError(
                f"the custom metrics API server returned {len(items)} results when we asked for "
                "exactly one"
            )
        value = parse_quantity_milli(str(items[0]["value"]))
        shown = _shown(_pod_values(body, metric))
        if target.type == "Value" and target.value is not None:
            return calc.object_value_replicas(spec_replicas, target.value, value, pods, tol), shown
        if target.type == "AverageValue" and target.average_value is not None:
            result = calc.object_average_replicas(status_replicas, target.average_value, value, tol)
            return result, shown
        raise calc.ReplicaError(
            "invalid object metric source: neither a value target nor an average value target "
            "was set"
        )
    values_list = _external_values(body)
    if not values_list:
        raise calc.ReplicaError("no metrics returned from external metrics API")
    if target.average_value is not None:
        result = calc.external_average_replicas(
            status_replicas, target.average_value, values_list, tol
        )
        return result, _shown(values_list)
    if target.value is not None:
        result = calc.external_value_replicas(spec_replicas, target.value, values_list, pods, tol)
        return result, _shown(values_list)
    raise calc.ReplicaError(
        "invalid external metric source: neither a value target nor an average value target was set"
    )


def _calculation_json(result: calc.Calculation) -> dict[str, Any]:
    out: dict[str, Any] = {
        "replicas": result.replicas,
        "current": calc.milli(result.usage),
        "ratio": round(result.ratio, 4),
        "steps": list(result.steps),
    }
    if result.utilization is not None:
        out["utilization"] = result.utilization
    if result.new_ratio is not None:
        out["ratioAfterFillIn"] = round(result.new_ratio, 4)
    return out


# --- one metric -----------------------------------------------------------------------------


def _aggregator_json(answer: Answer, values: Any) -> dict[str, Any]:
    return {
        "status": answer.status,
        "error": answer.error or None,
        "values": values,
        "response": dict(answer.body) if answer.body is not None else None,
    }


def _values_of(body: Mapping[str, Any] | None, metric: MetricSpec) -> Any:
    try:
        if metric.type == "External":
            return _shown(_external_values(body))
        return _shown(_pod_values(body, metric))
    except (QuantityError, KeyError) as exc:
        return f"unreadable: {exc}"


async def _explain_metric(
    ctx: Context,
    hpa: HPA,
    metric: MetricSpec,
    scale_selector: Any,
    pod_objects: Sequence[Mapping[str, Any]],
    pods: Sequence[calc.Pod],
    spec_replicas: int,
    status_replicas: int,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "index": metric.index,
        "type": metric.type,
        "name": metric.name,
        "label": metric.label,
        "target": metric.target.text,
        "request": None,
        "rules": None,
        "aggregator": None,
        "values": None,
        "calculation": None,
        "error": None,
        "diagnosis": [],
    }
    try:
        req = build_request(hpa, metric, scale_selector, ctx.mapper, ctx.custom_version)
    except SpecError as exc:
        entry["error"] = str(exc)
        return entry
    entry["request"] = {
        "group": req.group,
        "version": req.version,
        "path": req.path,
        "url": req.url,
        "labelSelector": req.params.get("labelSelector", ""),
        "metricLabelSelector": req.params.get("metricLabelSelector", ""),
    }
    rules, (service, answer) = await asyncio.gather(
        _rules_answer(ctx, hpa, metric, req, pod_objects),
        _aggregated(ctx, req),
    )
    entry["rules"] = rules
    body = rules["response"] if rules["status"] == 200 else None
    diagnosis: list[dict[str, Any]] = []
    if rules["status"] == 404 and rules.get("rule") is None:
        external = metric.type == "External"
        diagnosis += closest_rules(
            ctx.compiled,
            ctx.lives,
            req.metric,
            "" if external else req.resource,
            external,
            format_go_duration(ctx.options.max_age),
        )
    try:
        result, entry["values"] = _calculate(
            hpa, metric, body, pods, spec_replicas, status_replicas, ctx.clock()
        )
        entry["calculation"] = _calculation_json(result)
    except (calc.ReplicaError, QuantityError) as exc:
        reason = rules["response"].get("message") if rules["status"] != 200 else None
        entry["error"] = reason or str(exc)
    if metric.type in ("Pods", "Resource", "ContainerResource") and body is not None:
        names = [p.name for p in pods]
        got = _pod_values(body, metric)
        missing = [n for n in names if n not in got]
        queries = rules.get("queries") or []
        diagnosis += pod_problems(
            entry["request"]["labelSelector"],
            hpa.namespace,
            names,
            missing,
            queries[-1]["promql"] if queries else None,
        )
    elif not pods and metric.type in ("Pods", "Resource", "ContainerResource"):
        diagnosis += pod_problems(entry["request"]["labelSelector"], hpa.namespace, [], [], None)
    aggregated_values = _values_of(answer.body, metric) if answer.status == 200 else None
    entry["aggregator"] = {"apiService": service, **_aggregator_json(answer, aggregated_values)}
    diagnosis += aggregator_problems(
        service,
        answer.status,
        answer.error,
        int(rules["status"]),
        aggregated_values == _values_of(body, metric),
        ctx.user,
    )
    entry["diagnosis"] = diagnosis
    return entry


async def _aggregated(ctx: Context, req: MetricRequest) -> tuple[dict[str, Any], Answer]:
    service = await ctx.api_service(req.api_service)
    if not service.get("found") and service.get("status") == 0:
        return service, Answer(0, None, str(service.get("error")))
    return service, await through_aggregator(ctx.api, req)


# --- one HPA --------------------------------------------------------------------------------


async def explain_hpa(ctx: Context, hpa: HPA) -> dict[str, Any]:
    report: dict[str, Any] = {
        "namespace": hpa.namespace,
        "name": hpa.name,
        "scaleTarget": {
            "apiVersion": hpa.target_api_version,
            "kind": hpa.target_kind,
            "name": hpa.target_name,
        },
        "minReplicas": hpa.min_replicas,
        "maxReplicas": hpa.max_replicas,
        "behavior": hpa.behavior,
        "tolerance": str(hpa.tolerances),
        "pods": None,
        "metrics": [],
        "desired": None,
        "status": {
            "currentReplicas": hpa.status.get("currentReplicas"),
            "desiredReplicas": hpa.status.get("desiredReplicas"),
            "conditions": hpa.conditions,
        },
        "error": None,
        "ok": False,
    }
    try:
        scale = await get_scale(ctx.api, ctx.mapper, hpa)
    except KubeAPIError as exc:
        report["error"] = f"unable to get the target's current scale: {exc.message or exc}"
        return report
    report["scaleTarget"].update(
        resource=scale.resource,
        specReplicas=scale.spec_replicas,
        statusReplicas=scale.status_replicas,
        selector=scale.selector,
    )
    if not scale.selector:
        report["error"] = "selector is required: the HPA target's scale is missing a selector"
        return report
    try:
        selector = parse_selector(scale.selector)
    except SelectorError as exc:
        report["error"] = f"couldn't convert selector into a corresponding internal selector: {exc}"
        return report
    pod_objects = await list_pods(ctx.api, hpa.namespace, selector)
    pods = [parse_pod(p) for p in pod_objects]
    report["pods"] = {
        "count": len(pods),
        "runningAndReady": sum(1 for p in pods if p.running_and_ready),
        "names": [p.name for p in pods],
    }
    report["metrics"] = [
        await _explain_metric(
            ctx, hpa, m, selector, pod_objects, pods, scale.spec_replicas, scale.status_replicas
        )
        for m in hpa.metrics
    ]
    proposals = [
        m["calculation"]["replicas"] if m["calculation"] is not None else None
        for m in report["metrics"]
    ]
    combined = decision_rules.combine_metrics(proposals, scale.spec_replicas)
    decision = decision_rules.decide(
        scale.spec_replicas, hpa.min_replicas, hpa.max_replicas, combined, behavior=hpa.behavior
    )
    report["desired"] = {
        "fromMetrics": combined,
        "replicas": decision.replicas,
        "reason": decision.reason,
        "message": decision.message,
        "rescale": decision.rescale,
        "note": (
            "spec.behavior is set: its stabilization windows and policies depend on the "
            "controller's history, which cannot be known offline; this is the recommendation "
            "before them"
            if hpa.behavior
            else "the default downscale stabilization (5m) may hold a scale-down at the highest "
            "recommendation of the last 5 minutes"
        ),
    }
    report["ok"] = all(p is not None for p in proposals)
    return report
