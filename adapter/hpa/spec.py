"""An autoscaling/v2 HorizontalPodAutoscaler and the pods it scales, read from their JSON.

Only what the controller uses: the scale target, min/max, each metric's source, name,
selector and target (as milli-values, Go's `Quantity.MilliValue()`), whether a `behavior`
is set (and its tolerances), the status; of a pod its phase, Ready condition, start time,
deletion and requests (summed as calculateRequests sums them).
"""

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adapter.apimachinery.quantity import QuantityError, parse_quantity_milli
from adapter.hpa.replicas import DEFAULT_TOLERANCE, Pod, Tolerances

__all__ = [
    "HPA",
    "MetricSpec",
    "SpecError",
    "Target",
    "parse_hpa",
    "parse_pod",
    "parse_time",
]

_RESOURCES = ("cpu", "memory")


class SpecError(ValueError):
    """The HPA cannot be read (an invalid quantity, an unknown metric type...)."""


def parse_time(text: object) -> float | None:
    """An RFC 3339 `metav1.Time` as Unix seconds."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _milli(value: object, where: str) -> int:
    try:
        return parse_quantity_milli(str(value))
    except QuantityError as exc:
        raise SpecError(f"{where}: {exc}") from None


@dataclass(frozen=True, slots=True)
class Target:
    """`MetricTarget`: type Utilization (percent), Value or AverageValue (milli)."""

    type: str
    value: int | None = None
    average_value: int | None = None
    average_utilization: int | None = None
    text: str = ""  # as written: "50%", "100m", "average 30"

    @classmethod
    def from_json(cls, raw: Mapping[str, Any], where: str) -> "Target":
        kind = str(raw.get("type", ""))
        value = raw.get("value")
        average = raw.get("averageValue")
        utilization = raw.get("averageUtilization")
        parts = []
        if utilization is not None:
            parts.append(f"{utilization}% of requests")
        if average is not None:
            parts.append(f"average {average}")
        if value is not None:
            parts.append(f"value {value}")
        return cls(
            kind,
            _milli(value, f"{where}.value") if value is not None else None,
            _milli(average, f"{where}.averageValue") if average is not None else None,
            int(utilization) if utilization is not None else None,
            ", ".join(parts) or "(none)",
        )


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One entry of `spec.metrics`."""

    index: int
    type: str  # Pods, Object, External, Resource, ContainerResource
    name: str  # the metric's name, or the resource's (cpu, memory)
    target: Target
    selector: Mapping[str, Any] | None = None  # metric.selector, a LabelSelector
    described: Mapping[str, str] | None = None  # Object: apiVersion, kind, name
    container: str = ""  # ContainerResource

    @property
    def label(self) -> str:
        if self.type == "Object" and self.described is not None:
            return f"Object {self.described.get('kind')}/{self.described.get('name')} {self.name}"
        if self.type == "ContainerResource":
            return f"ContainerResource {self.name} of container {self.container}"
        return f"{self.type} {self.name}"

    @classmethod
    def from_json(cls, index: int, raw: Mapping[str, Any]) -> "MetricSpec":
        kind = str(raw.get("type", ""))
        where = f"spec.metrics[{index}]"
        key = {
            "Pods": "pods",
            "Object": "object",
            "External": "external",
            "Resource": "resource",
            "ContainerResource": "containerResource",
        }.get(kind)
        if key is None:
            raise SpecError(f"{where}.type: unknown metric source type {kind!r}")
        source = raw.get(key) or {}
        target = Target.from_json(source.get("target") or {}, f"{where}.{key}.target")
        if kind in ("Resource", "ContainerResource"):
            return cls(
                index, kind, str(source.get("name", "")), target,
                container=str(source.get("container", "")),
            )  # fmt: skip
        metric = source.get("metric") or {}
        described = source.get("describedObject") if kind == "Object" else None
        return cls(
            index,
            kind,
            str(metric.get("name", "")),
            target,
            metric.get("selector"),
            {k: str(v) for k, v in described.items()} if described else None,
        )


@dataclass(frozen=True, slots=True)
class HPA:
    namespace: str
    name: str
    target_api_version: str
    target_kind: str
    target_name: str
    min_replicas: int
    max_replicas: int
    metrics: tuple[MetricSpec, ...]
    behavior: bool
    tolerances: Tolerances
    status: Mapping[str, Any]

    @property
    def conditions(self) -> list[dict[str, Any]]:
        return [dict(c) for c in self.status.get("conditions") or ()]

    @property
    def target_group(self) -> str:
        group, _, version = self.target_api_version.rpartition("/")
        return group if version else ""


def _tolerance(behavior: Mapping[str, Any], direction: str) -> float:
    """`behavior.scaleUp/scaleDown.tolerance` (KEP-4951), else the controller's flag."""
    rules = behavior.get(direction) or {}
    if "tolerance" not in rules:
        return DEFAULT_TOLERANCE
    return _milli(rules["tolerance"], f"spec.behavior.{direction}.tolerance") / 1000.0


def parse_hpa(obj: Mapping[str, Any]) -> HPA:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    ref = spec.get("scaleTargetRef") or {}
    behavior = spec.get("behavior")
    metrics = tuple(MetricSpec.from_json(i, m) for i, m in enumerate(spec.get("metrics") or ()))
    if not metrics:
        # The API server defaults an empty list to 80% CPU utilization.
        metrics = (MetricSpec(0, "Resource", "cpu", Target("Utilization", None, None, 80, "80%")),)
    return HPA(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        target_api_version=str(ref.get("apiVersion", "")),
        target_kind=str(ref.get("kind", "")),
        target_name=str(ref.get("name", "")),
        min_replicas=int(spec.get("minReplicas", 1)),
        max_replicas=int(spec.get("maxReplicas", 0)),
        metrics=metrics,
        behavior=behavior is not None,
        tolerances=Tolerances(
            _tolerance(behavior or {}, "scaleDown"), _tolerance(behavior or {}, "scaleUp")
        ),
        status=obj.get("status") or {},
    )


def _containers(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Containers, and init containers that keep running (sidecars), as calculateRequests."""
    containers = list(spec.get("containers") or ())
    containers += [
        c for c in spec.get("initContainers") or () if c.get("restartPolicy") == "Always"
    ]
    return containers


def _requests(
    containers: Sequence[Mapping[str, Any]], name: str
) -> tuple[dict[str, int], dict[str, str]]:
    requests: dict[str, int] = {}
    missing: dict[str, str] = {}
    for resource in _RESOURCES:
        total = 0
        for container in containers:
            value = ((container.get("resources") or {}).get("requests") or {}).get(resource)
            if value is None:
                missing[resource] = str(container.get("name", ""))
                break
            total += _milli(value, f"pod {name} container {container.get('name')} {resource}")
        else:
            if containers:
                requests[resource] = total
    return requests, missing


def parse_pod(obj: Mapping[str, Any]) -> Pod:
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    name = str(meta.get("name", ""))
    ready = next((c for c in status.get("conditions") or () if c.get("type") == "Ready"), None)
    requests, missing = _requests(_containers(obj.get("spec") or {}), name)
    return Pod(
        name=name,
        phase=str(status.get("phase", "")),
        deleting=meta.get("deletionTimestamp") is not None,
        ready=str(ready.get("status")) if ready is not None else None,
        ready_transition=parse_time(ready.get("lastTransitionTime")) if ready else None,
        start_time=parse_time(status.get("startTime")),
        requests=requests,
        missing_request=missing,
    )
