"""The HPA controller's arithmetic: the Kubernetes documentation's examples, then the cases of
replica_calculator_test.go and horizontal_test.go that exercise each branch."""

import pytest

from adapter.hpa.decision import Decision, combine_metrics, decide, normalize
from adapter.hpa.replicas import (
    Pod,
    PodMetric,
    ReplicaError,
    Tolerances,
    external_average_replicas,
    external_value_replicas,
    group_pods,
    object_average_replicas,
    object_value_replicas,
    plain_metric_replicas,
    resource_utilization_replicas,
)

NOW = 10_000.0
STARTED = NOW - 3600  # long past the cpu initialization period


def pods(n: int, *, request: int = 1000, prefix: str = "p") -> list[Pod]:
    return [
        Pod(
            f"{prefix}{i}",
            start_time=STARTED,
            ready_transition=STARTED + 10,
            requests={"cpu": request},
        )
        for i in range(n)
    ]


def values(*milli: int, prefix: str = "p") -> dict[str, PodMetric]:
    return {f"{prefix}{i}": PodMetric(v, NOW - 30) for i, v in enumerate(milli)}


# desiredReplicas = ceil[currentReplicas * (currentMetricValue / desiredMetricValue)]
# (kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale, "Algorithm details")
DOCS_PODS_CASES = [
    pytest.param(2, (200, 200), 100, 4, id="docs: 200m for a target of 100m doubles"),
    pytest.param(4, (50, 50, 50, 50), 100, 2, id="docs: 50m for a target of 100m halves"),
    pytest.param(4, (105, 105, 105, 105), 100, 4, id="docs: 1.05 is within the tolerance 0.1"),
    pytest.param(4, (110, 110, 110, 110), 100, 4, id="the tolerance is inclusive: 1.1 keeps"),
    pytest.param(4, (111, 111, 111, 111), 100, 5, id="1.11 leaves the tolerance"),
    pytest.param(3, (1500, 1500, 1500), 1000, 5, id="ceil(1.5 x 3) = 5"),
]


@pytest.mark.parametrize(("current", "usage", "target", "expected"), DOCS_PODS_CASES)
def test_pods_metric_docs(current: int, usage: tuple[int, ...], target: int, expected: int) -> None:
    result = plain_metric_replicas(current, target, values(*usage), pods(current), NOW)
    assert result.replicas == expected


def test_docs_missing_pods_count_as_target_on_scale_down() -> None:
    # "if any pod is missing metrics ... assume 100% of the desired value for a scale down"
    result = plain_metric_replicas(3, 100, values(50, 50), pods(3), NOW)
    assert result.grouping is not None and result.grouping.missing == {"p2"}
    assert result.ratio == 0.5
    assert result.new_ratio == pytest.approx(200 / 3 / 100, abs=0.01)  # (50+50+100)/3
    assert result.replicas == 2


def test_docs_missing_pods_count_as_zero_on_scale_up() -> None:
    result = plain_metric_replicas(3, 100, values(300, 300), pods(3), NOW)
    assert result.ratio == 3.0
    assert result.new_ratio == 2.0  # (300+300+0)/3 = 200
    assert result.replicas == 6


def test_docs_unready_pods_count_as_zero_on_scale_up() -> None:
    group = [*pods(2), Pod("p2", phase="Pending")]
    result = plain_metric_replicas(3, 100, values(200, 200), group, NOW)
    assert result.grouping is not None and result.grouping.unready == {"p2"}
    assert result.new_ratio == 1.33  # Go's integer average: (200+200+0)/3 = 133m
    assert result.replicas == 4


def test_unready_pods_are_left_out_of_a_scale_down() -> None:
    group = [*pods(2), Pod("p2", phase="Pending")]
    result = plain_metric_replicas(3, 100, values(50, 50, 999), group, NOW)
    assert result.usage == 50 and result.replicas == 1  # ceil(0.5 x 2 ready)


def test_deleted_and_failed_pods_are_ignored() -> None:
    group = [*pods(2), Pod("p2", deleting=True), Pod("p3", phase="Failed")]
    result = plain_metric_replicas(2, 100, values(200, 200, 900, 900), group, NOW)
    assert result.grouping is not None and result.grouping.ignored == {"p2", "p3"}
    assert result.replicas == 4


def test_reversal_after_fill_in_keeps_the_count() -> None:
    # replica_calculator_test: a scale-up whose fill-in (0 for missing) turns it into a
    # scale-down keeps the current count.
    result = plain_metric_replicas(4, 100, values(120), pods(4), NOW)
    assert result.ratio == 1.2 and result.new_ratio == pytest.approx(0.3)
    assert result.replicas == 4


def test_errors() -> None:
    with pytest.raises(ReplicaError, match="no pods returned by selector"):
        plain_metric_replicas(1, 100, values(1), [], NOW)
    with pytest.raises(ReplicaError, match="did not receive metrics for targeted pods"):
        plain_metric_replicas(1, 100, {}, [Pod("p0", phase="Pending")], NOW)


def test_resource_utilization_docs_walkthrough() -> None:
    # The php-apache walkthrough: 1 pod at 305% of its 200m request, target 50%.
    result = resource_utilization_replicas(1, 50, "cpu", values(610), pods(1, request=200), NOW)
    assert (result.utilization, result.usage, result.replicas) == (305, 610, 7)
    # ...and the scale-up limit lets one step go to max(2 x 1, 4) = 4.
    assert normalize(1, 7, 1, 10) == Decision(
        4,
        True,
        "ScaleUpLimit",
        "the desired replica count is increasing faster than the maximum scale rate",
    )


def test_resource_utilization_uneven_requests_and_unready() -> None:
    # 1 ready pod using 260m of 100m, 1 pending pod requesting 300m, target 50%:
    # 260% / 50 = 5.2; with the pending pod at 0: 260 / 400 = 65% -> 1.3 -> ceil(2.6) = 3.
    group = [*pods(1, request=100), Pod("p1", phase="Pending", requests={"cpu": 300})]
    result = resource_utilization_replicas(1, 50, "cpu", values(260), group, NOW)
    assert result.ratio == pytest.approx(5.2)
    assert result.new_ratio == pytest.approx(1.3)
    assert result.replicas == 3


def test_resource_missing_request() -> None:
    group = [
        Pod("p0", start_time=STARTED, ready_transition=STARTED, missing_request={"cpu": "sidecar"})
    ]
    with pytest.raises(ReplicaError, match="missing request for cpu in container sidecar"):
        resource_utilization_replicas(1, 50, "cpu", values(100), group, NOW)


def test_cpu_readiness() -> None:
    metric = {"p": PodMetric(100, NOW - 10, 60)}
    # Within the initialization period: a sample from before a full window after readiness
    # is set aside.
    young = Pod("p", start_time=NOW - 60, ready_transition=NOW - 30)
    assert group_pods([young], metric, "cpu", NOW).unready == {"p"}
    assert group_pods([young], metric, "", NOW).ready == 1  # only cpu looks at readiness
    settled = Pod("p", start_time=NOW - 200, ready_transition=NOW - 100)
    assert group_pods([settled], metric, "cpu", NOW).ready == 1
    # After it: unready and never ready within the initial readiness delay.
    never = Pod("p", ready="False", start_time=STARTED, ready_transition=STARTED + 5)
    assert group_pods([never], metric, "cpu", NOW).unready == {"p"}
    was_ready = Pod("p", ready="False", start_time=STARTED, ready_transition=STARTED + 600)
    assert group_pods([was_ready], metric, "cpu", NOW).ready == 1
    assert group_pods([Pod("p", ready=None)], metric, "cpu", NOW).unready == {"p"}


def test_object_value() -> None:
    # docs: an Ingress at 20k requests-per-second for a target value of 10k, 3 ready pods.
    result = object_value_replicas(3, 10_000_000, 20_000_000, pods(3))
    assert (result.ratio, result.replicas) == (2.0, 6)
    assert object_value_replicas(3, 10_000, 10_500, pods(3)).replicas == 3  # tolerance
    # Only Running and Ready pods count.
    group = [*pods(2), Pod("x", ready="False")]
    assert object_value_replicas(3, 100, 300, group).replicas == 6
    assert object_value_replicas(0, 100, 250, []).replicas == 3  # from zero: ceil(ratio)


def test_object_and_external_average() -> None:
    # averageValue: the value divided by the target, against status.replicas.
    result = object_average_replicas(3, 30_000, 120_000)
    assert (result.replicas, result.usage) == (4, 40_000)
    assert object_average_replicas(4, 30_000, 120_000).replicas == 4
    result = external_average_replicas(3, 30_000, [50_000, 70_000])
    assert (result.replicas, result.usage) == (4, 40_000)


def test_external_value_sums_every_series() -> None:
    result = external_value_replicas(2, 10_000, [15_000, 15_000], pods(2))
    assert (result.usage, result.ratio, result.replicas) == (30_000, 3.0, 6)


def test_asymmetric_tolerances() -> None:
    tolerances = Tolerances(down=0.0, up=0.5)
    assert (
        plain_metric_replicas(2, 100, values(140, 140), pods(2), NOW, "", tolerances).replicas == 2
    )
    assert plain_metric_replicas(2, 100, values(95, 95), pods(2), NOW, "", tolerances).replicas == 2


@pytest.mark.parametrize(
    ("proposals", "spec", "expected"),
    [
        pytest.param([3, 5, 2], 3, 5, id="the largest proposal"),
        pytest.param([None, 5], 3, 5, id="a failed metric does not stop a scale-up"),
        pytest.param([None, 2], 3, None, id="nor allows a scale-down"),
        pytest.param([None, None], 3, None, id="all failed"),
    ],
)
def test_combine_metrics(proposals: list[int | None], spec: int, expected: int | None) -> None:
    assert combine_metrics(proposals, spec) == expected


@pytest.mark.parametrize(
    ("current", "minimum", "maximum", "desired", "replicas", "reason"),
    [
        pytest.param(3, 1, 10, 5, 5, "DesiredWithinRange", id="within"),
        pytest.param(3, 2, 10, 1, 2, "TooFewReplicas", id="min"),
        pytest.param(3, 1, 5, 8, 5, "TooManyReplicas", id="max below the scale-up limit"),
        pytest.param(3, 1, 20, 12, 6, "ScaleUpLimit", id="twice the current count"),
        pytest.param(1, 1, 20, 9, 4, "ScaleUpLimit", id="at least 4"),
        pytest.param(0, 1, 10, 5, 0, "ScalingDisabled", id="scaled to zero by hand"),
        pytest.param(12, 1, 10, 5, 10, "AboveMax", id="above max before any metric"),
        pytest.param(1, 2, 10, 5, 2, "BelowMin", id="below min before any metric"),
        pytest.param(3, 1, 10, None, 3, "FailedGetMetrics", id="no proposal"),
    ],
)
def test_decide(
    current: int, minimum: int, maximum: int, desired: int | None, replicas: int, reason: str
) -> None:
    decision = decide(current, minimum, maximum, desired)
    assert (decision.replicas, decision.reason) == (replicas, reason)
