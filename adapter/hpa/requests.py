"""The request the HPA controller sends for each metric, as k8s.io/metrics' clients build it.

- Pods: custom.metrics.k8s.io `namespaces/{ns}/pods/*/{metric}` with `labelSelector` (the scale
  target's selector) and `metricLabelSelector` (`NamespacedMetrics.GetForObjects`).
- Object: `namespaces/{ns}/{resource}/{name}/{metric}` with `metricLabelSelector`, the
  resource from the described kind through the REST mapper (`deployments.apps`, core group
  bare); a Namespace is `namespaces/{ns}/metrics/{metric}` (`RootScopedMetrics.GetForObject`).
- External: external.metrics.k8s.io/v1beta1 `namespaces/{ns}/{metric}` with `labelSelector` (the
  metric's selector); client-go lower-cases the metric name (it is the resource of the path).
- Resource: metrics.k8s.io/v1beta1 `namespaces/{ns}/pods` with `labelSelector`.

Empty selectors are left out; parameters are encoded as Go's `url.Values.Encode` (sorted).
"""

from dataclasses import dataclass, field
from urllib.parse import urlencode

from adapter.apimachinery.labels import Selector, SelectorError, label_selector_as_selector
from adapter.hpa.spec import HPA, MetricSpec, SpecError
from adapter.kube.rest_mapper import GroupResource, RESTMapper

__all__ = [
    "CUSTOM_GROUP",
    "EXTERNAL_GROUP",
    "RESOURCE_GROUP",
    "MetricRequest",
    "build_request",
    "resource_for_kind",
]

CUSTOM_GROUP = "custom.metrics.k8s.io"
EXTERNAL_GROUP = "external.metrics.k8s.io"
RESOURCE_GROUP = "metrics.k8s.io"


@dataclass(frozen=True, slots=True)
class MetricRequest:
    group: str
    version: str
    path: str  # without the query
    params: dict[str, str] = field(default_factory=dict)
    # For the in-process answer: the custom resource (`pods`, `services`...), the object's
    # name ("" for `*`), the metric as it arrives.
    resource: str = ""
    name: str = ""
    metric: str = ""

    @property
    def url(self) -> str:
        query = urlencode(sorted((k, v) for k, v in self.params.items() if v))
        return f"{self.path}?{query}" if query else self.path

    @property
    def api_service(self) -> str:
        """The APIService that serves it: `v1beta2.custom.metrics.k8s.io`."""
        return f"{self.version}.{self.group}"


def resource_for_kind(mapper: RESTMapper, api_version: str, kind: str) -> GroupResource:
    """The REST mapping of a kind (`RESTMapping(GroupKind)`), as qualResourceForKind."""
    group = api_version.rpartition("/")[0] if "/" in api_version else ""
    for info in mapper.known_resources():
        if info.kind == kind and info.group == group:
            return info.group_resource
    raise SpecError(f"unable to map kind {kind}.{group} to resource: no matches" if group else
                    f"unable to map kind {kind} to resource: no matches")  # fmt: skip


def _selector(raw: object, where: str) -> Selector:
    try:
        return label_selector_as_selector(raw if isinstance(raw, dict) else None)
    except SelectorError as exc:
        raise SpecError(f"{where}: {exc}") from None


def build_request(
    hpa: HPA,
    metric: MetricSpec,
    scale_selector: Selector,
    mapper: RESTMapper,
    custom_version: str = "v1beta2",
) -> MetricRequest:
    """The request for one metric of `hpa` (raises SpecError where the controller fails)."""
    ns = hpa.namespace
    metric_selector = str(_selector(metric.selector, f"spec.metrics[{metric.index}] selector"))
    custom = f"/apis/{CUSTOM_GROUP}/{custom_version}"
    if metric.type == "Pods":
        return MetricRequest(
            CUSTOM_GROUP,
            custom_version,
            f"{custom}/namespaces/{ns}/pods/*/{metric.name}",
            {"labelSelector": str(scale_selector), "metricLabelSelector": metric_selector},
            "pods",
            "",
            metric.name,
        )
    if metric.type == "Object":
        described = metric.described or {}
        kind, name = described.get("kind", ""), described.get("name", "")
        group = described.get("apiVersion", "").rpartition("/")[0]
        if kind == "Namespace" and not group:
            return MetricRequest(
                CUSTOM_GROUP,
                custom_version,
                f"{custom}/namespaces/{ns}/metrics/{metric.name}",
                {"metricLabelSelector": metric_selector},
                "namespaces",
                ns,
                metric.name,
            )
        resource = resource_for_kind(mapper, described.get("apiVersion", ""), kind)
        return MetricRequest(
            CUSTOM_GROUP,
            custom_version,
            f"{custom}/namespaces/{ns}/{resource}/{name}/{metric.name}",
            {"metricLabelSelector": metric_selector},
            str(resource),
            name,
            metric.name,
        )
    if metric.type == "External":
        name = metric.name.lower()
        return MetricRequest(
            EXTERNAL_GROUP,
            "v1beta1",
            f"/apis/{EXTERNAL_GROUP}/v1beta1/namespaces/{ns}/{name}",
            {"labelSelector": metric_selector},
            metric=name,
        )
    return MetricRequest(
        RESOURCE_GROUP,
        "v1beta1",
        f"/apis/{RESOURCE_GROUP}/v1beta1/namespaces/{ns}/pods",
        {"labelSelector": str(scale_selector)},
        "pods",
        metric=metric.name,
    )
