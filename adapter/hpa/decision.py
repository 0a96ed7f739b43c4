"""The HPA-level steps of the controller's `horizontal.go`: computeReplicasForMetrics (the
largest proposal, and when failed metrics stop the HPA), the gates of reconcileAutoscaler, and
convertDesiredReplicasWithRules with calculateScaleUpLimit (min, max, at most twice the
current count or 4 per step). Pure, as `adapter.hpa.replicas`.
"""

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Decision", "combine_metrics", "decide", "normalize"]

_SCALE_UP_LIMIT_FACTOR = 2.0
_SCALE_UP_LIMIT_MINIMUM = 4.0


def combine_metrics(proposals: Sequence[int | None], spec_replicas: int) -> int | None:
    """computeReplicasForMetrics: the largest proposal; None (the controller's -1: no
    scaling, ScalingActive False) when every metric failed, or some failed and the valid
    ones would scale down. `None` in `proposals` is a metric that failed."""
    valid = [p for p in proposals if p is not None]
    invalid = len(proposals) - len(valid)
    replicas = 0
    for proposal in valid:
        if replicas == 0 or proposal > replicas:
            replicas = proposal
    if invalid >= len(proposals) or (invalid > 0 and replicas < spec_replicas):
        return None
    return replicas


@dataclass(frozen=True, slots=True)
class Decision:
    """What reconcileAutoscaler would set the scale to, and why."""

    replicas: int
    rescale: bool
    reason: str  # the ScalingLimited/ScalingActive reason, or the gate that applied
    message: str


def normalize(
    current: int, desired: int, min_replicas: int, max_replicas: int, *, behavior: bool = False
) -> Decision:
    """convertDesiredReplicasWithRules (normalizeDesiredReplicas without the downscale
    stabilization window, which needs the controller's history). With `behavior`, the
    policies' rates also need that history: only min and max apply."""
    scale_up_limit = int(max(_SCALE_UP_LIMIT_FACTOR * current, _SCALE_UP_LIMIT_MINIMUM))
    if max_replicas > scale_up_limit and not behavior:
        maximum, reason = scale_up_limit, "ScaleUpLimit"
        message = "the desired replica count is increasing faster than the maximum scale rate"
    else:
        maximum, reason = max_replicas, "TooManyReplicas"
        message = "the desired replica count is more than the maximum replica count"
    if desired < min_replicas:
        return Decision(
            min_replicas,
            min_replicas != current,
            "TooFewReplicas",
            "the desired replica count is less than the minimum replica count",
        )
    if desired > maximum:
        return Decision(maximum, maximum != current, reason, message)
    return Decision(
        desired,
        desired != current,
        "DesiredWithinRange",
        "the desired count is within the acceptable range",
    )


def decide(
    current: int,
    min_replicas: int,
    max_replicas: int,
    metrics_desired: int | None,
    *,
    behavior: bool = False,
) -> Decision:
    """The gates of reconcileAutoscaler, then normalize. `metrics_desired` None: the
    metrics gave no proposal (the controller keeps the current count)."""
    if current == 0 and min_replicas != 0:
        return Decision(
            0,
            False,
            "ScalingDisabled",
            "scaling is disabled since the replica count of the target is zero",
        )
    if current > max_replicas:
        return Decision(
            max_replicas, True, "AboveMax", "Current number of replicas above Spec.MaxReplicas"
        )
    if current < min_replicas:
        return Decision(
            min_replicas, True, "BelowMin", "Current number of replicas below Spec.MinReplicas"
        )
    if metrics_desired is None:
        return Decision(
            current, False, "FailedGetMetrics", "no replica count could be computed from metrics"
        )
    return normalize(current, metrics_desired, min_replicas, max_replicas, behavior=behavior)
