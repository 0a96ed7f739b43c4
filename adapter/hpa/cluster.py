"""What explain-hpa reads from kube-apiserver, as the HPA controller reads it.

The HPAs (autoscaling/v2), the scale target's `scale` subresource (its `status.selector`
is the pod selector the controller uses, through the REST mappings of the target's kind),
the pods, the APIServices of the metrics APIs, the preferred custom.metrics.k8s.io version,
and the metrics requests themselves through the aggregator.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from adapter.apimachinery.labels import Selector
from adapter.hpa.requests import CUSTOM_GROUP, MetricRequest
from adapter.hpa.spec import HPA
from adapter.kube.api import KubeAPI, KubeAPIError
from adapter.kube.object_cache import collection_path
from adapter.kube.rest_mapper import RESTMapper

__all__ = [
    "Answer",
    "Scale",
    "api_service",
    "custom_metrics_version",
    "get_scale",
    "list_hpas",
    "list_pods",
    "through_aggregator",
]

HPA_PATH = "/apis/autoscaling/v2"


async def list_hpas(api: KubeAPI, namespace: str | None, name: str | None) -> list[dict[str, Any]]:
    """The named HPA, or those of `namespace` (None: every namespace)."""
    base = f"{HPA_PATH}/namespaces/{quote(namespace, safe='')}" if namespace else HPA_PATH
    if name:
        return [await api.get(f"{base}/horizontalpodautoscalers/{quote(name, safe='')}")]
    body = await api.get(f"{base}/horizontalpodautoscalers")
    items = [dict(item) for item in body.get("items") or ()]
    for item in items:
        # Typed lists leave out each item's TypeMeta.
        item.setdefault("kind", "HorizontalPodAutoscaler")
        item.setdefault("apiVersion", "autoscaling/v2")
    return items


@dataclass(frozen=True, slots=True)
class Scale:
    resource: str  # deployments.apps
    spec_replicas: int
    status_replicas: int
    selector: str  # as the scale subresource reports it


async def get_scale(api: KubeAPI, mapper: RESTMapper, hpa: HPA) -> Scale:
    """scaleForResourceMappings: the first mapping whose `scale` answers; the first error."""
    group = hpa.target_group
    mappings = [
        info
        for info in mapper.known_resources()
        if info.kind == hpa.target_kind and info.group == group
    ]
    if not mappings:
        raise KubeAPIError(
            0, "NoKindMatch", f'no matches for kind "{hpa.target_kind}" in group "{group}"'
        )
    first: KubeAPIError | None = None
    for info in mappings:
        path = f"{collection_path(info, hpa.namespace)}/{quote(hpa.target_name, safe='')}/scale"
        try:
            body = await api.get(path)
        except KubeAPIError as exc:
            first = first or exc
            continue
        spec, status = body.get("spec") or {}, body.get("status") or {}
        return Scale(
            str(info.group_resource),
            int(spec.get("replicas") or 0),
            int(status.get("replicas") or 0),
            str(status.get("selector") or ""),
        )
    assert first is not None
    raise first


async def list_pods(api: KubeAPI, namespace: str, selector: Selector) -> list[dict[str, Any]]:
    params = {"labelSelector": str(selector)} if not selector.empty() else None
    body = await api.get(f"/api/v1/namespaces/{quote(namespace, safe='')}/pods", params)
    return [dict(item) for item in body.get("items") or ()]


async def custom_metrics_version(api: KubeAPI) -> str:
    """The version the HPA's custom metrics client picks: the group's preferred version if
    it knows it (v1beta2, v1beta1), else the first it knows; v1beta2 when discovery fails."""
    try:
        body = await api.get("/apis")
    except KubeAPIError:
        return "v1beta2"
    for group in body.get("groups") or ():
        if group.get("name") != CUSTOM_GROUP:
            continue
        preferred = (group.get("preferredVersion") or {}).get("version")
        if preferred in ("v1beta2", "v1beta1"):
            return str(preferred)
        for version in group.get("versions") or ():
            if version.get("version") in ("v1beta2", "v1beta1"):
                return str(version["version"])
    return "v1beta2"


async def api_service(api: KubeAPI, name: str) -> dict[str, Any]:
    """An APIService's registration and its Available condition, or why it cannot be read."""
    try:
        body = await api.get(f"/apis/apiregistration.k8s.io/v1/apiservices/{quote(name, safe='')}")
    except KubeAPIError as exc:
        return {"name": name, "found": False, "error": _error_text(exc), "status": exc.status}
    spec = body.get("spec") or {}
    service = spec.get("service")
    available: dict[str, Any] = next(
        (
            c
            for c in (body.get("status") or {}).get("conditions") or ()
            if c.get("type") == "Available"
        ),
        {},
    )
    return {
        "name": name,
        "found": True,
        "service": f"{service.get('namespace')}/{service.get('name')}" if service else None,
        "available": available.get("status", "Unknown"),
        "reason": available.get("reason", ""),
        "message": available.get("message", ""),
    }


@dataclass(frozen=True, slots=True)
class Answer:
    """kube-apiserver's answer to a metrics request."""

    status: int  # 0: kube-apiserver could not be reached
    body: Mapping[str, Any] | None
    error: str = ""
    reason: str = ""


def _error_text(exc: KubeAPIError) -> str:
    return exc.message or exc.reason or str(exc)


async def through_aggregator(api: KubeAPI, request: MetricRequest) -> Answer:
    params = {k: v for k, v in request.params.items() if v}
    try:
        body = await api.get(request.path, params or None)
    except KubeAPIError as exc:
        return Answer(exc.status, None, _error_text(exc), exc.reason)
    return Answer(200, body)
