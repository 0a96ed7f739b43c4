"""The HPA controller's replica arithmetic, ported from Kubernetes (v1.33).

`pkg/controller/podautoscaler/replica_calculator.go` (GetResourceReplicas,
calcPlainMetricReplicas for GetRawResourceReplicas and GetMetricReplicas,
GetObjectMetricReplicas, GetObjectPerPodMetricReplicas, GetExternalMetricReplicas,
GetExternalPerPodMetricReplicas, groupPods, calculateRequests, getReadyPodsCount),
`metrics/utilization.go` (GetResourceUtilizationRatio, GetMetricUsageRatio); the HPA-level
steps of `horizontal.go` are in `adapter.hpa.decision`. Values are milli-units (Go's
`Quantity.MilliValue()`), integer division truncates as Go's does. Pure: the pods, the
metrics and the clock come in as arguments. Each result carries the steps, in words, for
the explanation.
"""

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from adapter.apimachinery.quantity import INT64_MAX, format_decimal_si

__all__ = [
    "CPU_INITIALIZATION_PERIOD",
    "DEFAULT_TOLERANCE",
    "INITIAL_READINESS_DELAY",
    "Calculation",
    "Grouping",
    "Pod",
    "PodMetric",
    "ReplicaError",
    "Tolerances",
    "external_average_replicas",
    "external_value_replicas",
    "group_pods",
    "milli",
    "object_average_replicas",
    "object_value_replicas",
    "plain_metric_replicas",
    "pod_requests",
    "ready_pod_count",
    "resource_utilization_replicas",
]

DEFAULT_TOLERANCE = 0.1
CPU_INITIALIZATION_PERIOD = 300.0  # --horizontal-pod-autoscaler-cpu-initialization-period
INITIAL_READINESS_DELAY = 30.0  # --horizontal-pod-autoscaler-initial-readiness-delay
_INT32_MAX = (1 << 31) - 1


class ReplicaError(Exception):
    """The controller cannot compute a proposal for this metric (its error message)."""


@dataclass(frozen=True, slots=True)
class Tolerances:
    """Go's `Tolerances`: the usage ratio may be within [1-down, 1+up] without scaling."""

    down: float = DEFAULT_TOLERANCE
    up: float = DEFAULT_TOLERANCE

    def is_within(self, ratio: float) -> bool:
        return (1.0 - self.down) <= ratio <= (1.0 + self.up)

    def __str__(self) -> str:
        return f"[{1.0 - self.down:g}, {1.0 + self.up:g}]"


@dataclass(frozen=True, slots=True)
class Pod:
    """What the controller reads of a pod (times are Unix seconds)."""

    name: str
    phase: str = "Running"
    deleting: bool = False
    ready: str | None = "True"  # the Ready condition's status; None without one
    ready_transition: float | None = None
    start_time: float | None = None
    # Per resource: the request summed as calculateRequests does, or the name of the
    # container that has none (the controller's error names it).
    requests: Mapping[str, int] = field(default_factory=dict)
    missing_request: Mapping[str, str] = field(default_factory=dict)

    @property
    def running_and_ready(self) -> bool:
        return self.phase == "Running" and self.ready == "True"


@dataclass(frozen=True, slots=True)
class PodMetric:
    value: int  # milli
    timestamp: float = 0.0
    window: float = 60.0


@dataclass(frozen=True, slots=True)
class Grouping:
    """groupPods: ready pods with a metric, and the three sets set aside."""

    ready: int
    unready: frozenset[str]  # Pending, or (cpu) not ready yet: 0% on a scale-up
    missing: frozenset[str]  # no metric: 0% on a scale-up, 100% of target on a scale-down
    ignored: frozenset[str]  # being deleted, or Failed: never counted


@dataclass(frozen=True, slots=True)
class Calculation:
    """One metric's proposal, with the numbers the HPA status would show."""

    replicas: int
    usage: int  # milli: the average (Pods, AverageValue), total (Value) or raw resource usage
    ratio: float
    utilization: int | None = None  # percent of requests (Resource utilization only)
    grouping: Grouping | None = None
    new_ratio: float | None = None  # after filling in missing and unready pods
    steps: tuple[str, ...] = ()


def milli(value: int) -> str:
    """A milli-value as the HPA status shows it (`resource.NewMilliQuantity(v, DecimalSI)`)."""
    return format_decimal_si(max(-INT64_MAX, min(INT64_MAX, value)))


def _div(a: int, b: int) -> int:
    """Go's integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _ceil_int32(value: float) -> int:
    return _INT32_MAX if value > _INT32_MAX else math.ceil(value)


# --- pods ---------------------------------------------------------------------------------


def group_pods(
    pods: Sequence[Pod],
    metrics: Mapping[str, PodMetric],
    resource: str,
    now: float,
    cpu_initialization_period: float = CPU_INITIALIZATION_PERIOD,
    initial_readiness_delay: float = INITIAL_READINESS_DELAY,
) -> Grouping:
    """groupPods. `resource` is "" for custom metrics: only cpu looks at readiness."""
    ready = 0
    unready: set[str] = set()
    missing: set[str] = set()
    ignored: set[str] = set()
    for pod in pods:
        if pod.deleting or pod.phase == "Failed":
            ignored.add(pod.name)
            continue
        if pod.phase == "Pending":
            unready.add(pod.name)
            continue
        metric = metrics.get(pod.name)
        if metric is None:
            missing.add(pod.name)
            continue
        if resource == "cpu":
            if pod.ready is None or pod.start_time is None or pod.ready_transition is None:
                not_ready = True
            elif pod.start_time + cpu_initialization_period > now:
                # Still initialising: unready, or no full window since the last transition.
                not_ready = pod.ready == "False" or (
                    metric.timestamp < pod.ready_transition + metric.window
                )
            else:
                # Unready and never ready since it started.
                not_ready = (
                    pod.ready == "False"
                    and pod.start_time + initial_readiness_delay > pod.ready_transition
                )
            if not_ready:
                unready.add(pod.name)
                continue
        ready += 1
    return Grouping(ready, frozenset(unready), frozenset(missing), frozenset(ignored))


def pod_requests(pods: Sequence[Pod], resource: str) -> dict[str, int]:
    """calculateRequests (containers' requests summed, with restartable init containers)."""
    requests: dict[str, int] = {}
    for pod in pods:
        container = pod.missing_request.get(resource)
        if container is not None or resource not in pod.requests:
            raise ReplicaError(
                f"missing request for {resource} in container {container or '?'} of Pod {pod.name}"
            )
        requests[pod.name] = pod.requests[resource]
    return requests


def ready_pod_count(pods: Sequence[Pod]) -> int:
    """getReadyPodsCount."""
    if not pods:
        raise ReplicaError("no pods returned by selector while calculating replica count")
    return sum(1 for pod in pods if pod.running_and_ready)


def _check_pods(pods: Sequence[Pod]) -> None:
    if not pods:
        raise ReplicaError("no pods returned by selector while calculating replica count")


def _grouping_step(grouping: Grouping) -> str:
    parts = [f"{grouping.ready} ready with a metric"]
    for label, names in (
        ("unready", grouping.unready),
        ("missing a metric", grouping.missing),
        ("ignored (deleted or failed)", grouping.ignored),
    ):
        if names:
            parts.append(f"{len(names)} {label}: {', '.join(sorted(names))}")
    return "pods: " + "; ".join(parts)


def _resource_ratio(
    metrics: Mapping[str, PodMetric], requests: Mapping[str, int], target: int
) -> tuple[float, int, int]:
    """GetResourceUtilizationRatio: (ratio, utilization %, raw average)."""
    total = requests_total = entries = 0
    for name, metric in metrics.items():
        request = requests.get(name)
        if request is None:
            continue
        total += metric.value
        requests_total += request
        entries += 1
    if requests_total == 0:
        raise ReplicaError("no metrics returned matched known pods")
    utilization = _div(total * 100, requests_total)
    return utilization / target, utilization, _div(total, entries)


def _usage_ratio(metrics: Mapping[str, PodMetric], target: int) -> tuple[float, int]:
    """GetMetricUsageRatio: (ratio, average)."""
    total = sum(m.value for m in metrics.values())
    average = _div(total, len(metrics))
    return average / target, average


def _rebalanced(
    current: int,
    ratio: float,
    new_ratio: float,
    count: int,
    tolerances: Tolerances,
    steps: list[str],
) -> int:
    """The end of GetResourceReplicas and calcPlainMetricReplicas, after the fill-in."""
    steps.append(f"ratio after the fill-in = {new_ratio:.4g} over {count} pods")
    if tolerances.is_within(new_ratio):
        steps.append(f"{new_ratio:.4g} is within the tolerance {tolerances}: keep {current}")
        return current
    if (ratio < 1.0 < new_ratio) or (new_ratio < 1.0 < ratio):
        steps.append("the fill-in reverses the direction of the change: keep the current count")
        return current
    replicas = math.ceil(new_ratio * count)
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        steps.append(f"ceil({new_ratio:.4g} x {count}) = {replicas} would reverse the direction")
        return current
    steps.append(f"ceil({new_ratio:.4g} x {count}) = {replicas}")
    return replicas


def _no_fill_in(
    current: int, ratio: float, ready: int, tolerances: Tolerances, steps: list[str]
) -> int:
    if tolerances.is_within(ratio):
        steps.append(f"{ratio:.4g} is within the tolerance {tolerances}: keep {current}")
        return current
    replicas = math.ceil(ratio * ready)
    steps.append(f"ceil({ratio:.4g} x {ready} ready pods) = {replicas}")
    return replicas


def _ready_metrics(
    metrics: Mapping[str, PodMetric], pods: Sequence[Pod], resource: str, now: float
) -> tuple[dict[str, PodMetric], Grouping]:
    """The start of both functions: group the pods, drop the unready and ignored ones."""
    _check_pods(pods)
    kept = dict(metrics)
    grouping = group_pods(pods, kept, resource, now)
    for name in grouping.ignored | grouping.unready:
        kept.pop(name, None)
    if not kept:
        raise ReplicaError("did not receive metrics for targeted pods (pods might be unready)")
    return kept, grouping


def _fill_in(
    current: int,
    ratio: float,
    grouping: Grouping,
    metrics: dict[str, PodMetric],
    tolerances: Tolerances,
    steps: list[str],
    missing_on_scale_down: tuple[Mapping[str, int], str],
    recompute: Callable[[Mapping[str, PodMetric]], float],
) -> tuple[int, float | None]:
    """The rest of both: without unready pods on a scale-up nor missing pods, the ratio
    scales the ready pods; else fill them in (`missing_on_scale_down`: values and words for
    missing pods on a scale-down; 0 otherwise), recompute, and rebalance."""
    scale_up_unready = bool(grouping.unready) and ratio > 1.0
    if not scale_up_unready and not grouping.missing:
        return _no_fill_in(current, ratio, grouping.ready, tolerances, steps), None
    if grouping.missing:
        if ratio < 1.0:
            values, words = missing_on_scale_down
            for name in grouping.missing:
                metrics[name] = PodMetric(values[name])
            steps.append(f"scale-down: pods missing a metric count as {words}")
        elif ratio > 1.0:
            for name in grouping.missing:
                metrics[name] = PodMetric(0)
            steps.append("scale-up: pods missing a metric count as 0")
    if scale_up_unready:
        for name in grouping.unready:
            metrics[name] = PodMetric(0)
        steps.append("scale-up: unready pods count as 0")
    new_ratio = recompute(metrics)
    return _rebalanced(current, ratio, new_ratio, len(metrics), tolerances, steps), new_ratio


def resource_utilization_replicas(
    current: int,
    target_utilization: int,
    resource: str,
    metrics: Mapping[str, PodMetric],
    pods: Sequence[Pod],
    now: float,
    tolerances: Tolerances = Tolerances(),
) -> Calculation:
    """GetResourceReplicas (target: averageUtilization, percent of the pods' requests)."""
    kept, grouping = _ready_metrics(metrics, pods, resource, now)
    requests = pod_requests(pods, resource)
    ratio, utilization, raw = _resource_ratio(kept, requests, target_utilization)
    steps = [
        _grouping_step(grouping),
        f"utilization = {utilization}% of requests (average {milli(raw)}); "
        f"ratio = {utilization} / {target_utilization} = {ratio:.4g}",
    ]
    fallback = max(100, target_utilization)
    replicas, new_ratio = _fill_in(
        current,
        ratio,
        grouping,
        kept,
        tolerances,
        steps,
        ({n: r * fallback // 100 for n, r in requests.items()}, f"{fallback}% of requests"),
        lambda filled: _resource_ratio(filled, requests, target_utilization)[0],
    )
    return Calculation(replicas, raw, ratio, utilization, grouping, new_ratio, tuple(steps))


def plain_metric_replicas(
    current: int,
    target: int,
    metrics: Mapping[str, PodMetric],
    pods: Sequence[Pod],
    now: float,
    resource: str = "",
    tolerances: Tolerances = Tolerances(),
) -> Calculation:
    """calcPlainMetricReplicas: a Pods metric (GetMetricReplicas, `resource` "") or a
    Resource metric with an averageValue target (GetRawResourceReplicas)."""
    kept, grouping = _ready_metrics(metrics, pods, resource, now)
    ratio, usage = _usage_ratio(kept, target)
    steps = [
        _grouping_step(grouping),
        f"average = {milli(usage)} over {len(kept)} pods; "
        f"ratio = {milli(usage)} / {milli(target)} = {ratio:.4g}",
    ]
    replicas, new_ratio = _fill_in(
        current,
        ratio,
        grouping,
        kept,
        tolerances,
        steps,
        (dict.fromkeys(grouping.missing, target), f"the target {milli(target)}"),
        lambda filled: _usage_ratio(filled, target)[0],
    )
    return Calculation(replicas, usage, ratio, None, grouping, new_ratio, tuple(steps))


def _usage_ratio_replicas(
    current: int, ratio: float, pods: Sequence[Pod], tolerances: Tolerances, steps: list[str]
) -> int:
    """getUsageRatioReplicaCount."""
    if current == 0:
        replicas = math.ceil(ratio)
        steps.append(f"scaled to zero: ceil({ratio:.4g}) = {replicas}")
        return replicas
    if tolerances.is_within(ratio):
        steps.append(f"{ratio:.4g} is within the tolerance {tolerances}: keep {current}")
        return current
    ready = ready_pod_count(pods)
    replicas = _ceil_int32(ratio * ready)
    steps.append(f"ceil({ratio:.4g} x {ready} ready pods) = {replicas}")
    return replicas


def object_value_replicas(
    current: int,
    target: int,
    value: int,
    pods: Sequence[Pod],
    tolerances: Tolerances = Tolerances(),
) -> Calculation:
    """GetObjectMetricReplicas (an Object metric with a `value` target)."""
    ratio = value / target
    steps = [f"ratio = {milli(value)} / {milli(target)} = {ratio:.4g}"]
    replicas = _usage_ratio_replicas(current, ratio, pods, tolerances, steps)
    return Calculation(replicas, value, ratio, steps=tuple(steps))


def _per_pod(
    status_replicas: int, target: int, total: int, tolerances: Tolerances, what: str
) -> Calculation:
    """GetObjectPerPodMetricReplicas and GetExternalPerPodMetricReplicas."""
    if status_replicas == 0:
        raise ReplicaError("the scale target has no replicas (status.replicas is 0)")
    ratio = total / (target * status_replicas)
    steps = [
        f"ratio = {what}{milli(total)} / ({milli(target)} x {status_replicas} replicas) "
        f"= {ratio:.4g}"
    ]
    replicas = status_replicas
    if tolerances.is_within(ratio):
        steps.append(f"{ratio:.4g} is within the tolerance {tolerances}: keep {replicas}")
    else:
        replicas = _ceil_int32(total / target)
        steps.append(f"ceil({milli(total)} / {milli(target)}) = {replicas}")
    usage = INT64_MAX if total >= INT64_MAX else math.ceil(total / status_replicas)
    return Calculation(replicas, usage, ratio, steps=tuple(steps))


def object_average_replicas(
    status_replicas: int, target: int, value: int, tolerances: Tolerances = Tolerances()
) -> Calculation:
    """GetObjectPerPodMetricReplicas (an Object metric with an `averageValue` target)."""
    return _per_pod(status_replicas, target, value, tolerances, "")


def _sum(values: Sequence[int]) -> int:
    total = 0
    for value in values:
        if value > 0 and total > INT64_MAX - value:
            return INT64_MAX
        total += value
    return total


def external_value_replicas(
    current: int,
    target: int,
    values: Sequence[int],
    pods: Sequence[Pod],
    tolerances: Tolerances = Tolerances(),
) -> Calculation:
    """GetExternalMetricReplicas (`value` target: the sum of every series returned)."""
    total = _sum(values)
    ratio = total / target
    steps = [f"ratio = sum of {len(values)} values {milli(total)} / {milli(target)} = {ratio:.4g}"]
    replicas = _usage_ratio_replicas(current, ratio, pods, tolerances, steps)
    return Calculation(replicas, total, ratio, steps=tuple(steps))


def external_average_replicas(
    status_replicas: int, target: int, values: Sequence[int], tolerances: Tolerances = Tolerances()
) -> Calculation:
    """GetExternalPerPodMetricReplicas (`averageValue` target)."""
    what = f"the sum of {len(values)} series " if len(values) != 1 else ""
    return _per_pod(status_replicas, target, _sum(values), tolerances, what)
