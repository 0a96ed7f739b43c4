"""API discovery: `/apis`, `/apis/<group>`, `/apis/<group>/<version>`, aggregated discovery.

The aggregator probes `/apis/<group>/<version>` for availability and asks `/apis` for
aggregated discovery (`apidiscovery.k8s.io` v2 or v2beta1, chosen by the Accept header); the
answers only depend on the registry in memory, never on Prometheus being up.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "APIResource",
    "ServedGroup",
    "aggregated_content_type",
    "aggregated_discovery",
    "api_group",
    "api_group_list",
    "api_resource_list",
    "negotiate_aggregated",
]

AGGREGATED_GROUP = "apidiscovery.k8s.io"
AGGREGATED_VERSIONS = ("v2", "v2beta1")


@dataclass(frozen=True, slots=True)
class APIResource:
    """One entry of an APIResourceList (metav1.APIResource)."""

    name: str  # `pods/http_requests` for custom metrics, the metric name for external ones
    namespaced: bool
    kind: str
    verbs: tuple[str, ...] = ("get",)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "singularName": "",
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }


@dataclass(frozen=True, slots=True)
class ServedGroup:
    name: str
    versions: tuple[str, ...]  # preferred first
    resources: Callable[[], Sequence[APIResource]]
    # Clients (kubectl >= 1.26) warn about an empty resource list, so an empty registry is
    # advertised with one placeholder entry, as custom-metrics-apiserver's defaults do.
    placeholder: APIResource

    def current_resources(self) -> Sequence[APIResource]:
        return self.resources() or (self.placeholder,)


def _group_version(group: str, version: str) -> dict[str, str]:
    return {"groupVersion": f"{group}/{version}", "version": version}


def _group_json(group: ServedGroup) -> dict[str, Any]:
    return {
        "name": group.name,
        "versions": [_group_version(group.name, v) for v in group.versions],
        "preferredVersion": _group_version(group.name, group.versions[0]),
    }


def api_group_list(groups: Sequence[ServedGroup]) -> dict[str, Any]:
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group_json(g) for g in groups]}


def api_group(group: ServedGroup) -> dict[str, Any]:
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_json(group)}


def api_resource_list(group: ServedGroup, version: str) -> dict[str, Any]:
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group.name}/{version}",
        "resources": [r.as_json() for r in group.current_resources()],
    }


def _scope(namespaced: bool) -> str:
    return "Namespaced" if namespaced else "Cluster"


def _discovery_resources(resources: Sequence[APIResource]) -> list[dict[str, Any]]:
    """k8s.io/apiserver's ConvertGroupVersionIntoToDiscovery: `pods/metric` entries become
    subresources of a parent `pods` entry, created when the parent is not listed itself."""
    entries: list[dict[str, Any]] = []
    parents: dict[str, dict[str, Any]] = {}
    for r in resources:
        if "/" not in r.name:
            entry = {
                "resource": r.name,
                "responseKind": {"group": "", "version": "", "kind": r.kind},
                "scope": _scope(r.namespaced),
                "singularResource": "",
                "verbs": list(r.verbs),
            }
            entries.append(entry)
            parents[r.name] = entry
    for r in resources:
        parent_name, slash, sub = r.name.partition("/")
        if not slash:
            continue
        parent = parents.get(parent_name)
        if parent is None:
            parent = {
                "resource": parent_name,
                "responseKind": {"group": "", "version": "", "kind": ""},
                "scope": _scope(r.namespaced),
                "singularResource": "",
                "verbs": None,
            }
            entries.append(parent)
            parents[parent_name] = parent
        parent.setdefault("subresources", []).append(
            {
                "subresource": sub,
                "responseKind": {"group": "", "version": "", "kind": r.kind},
                "verbs": list(r.verbs),
            }
        )
    return entries


def aggregated_discovery(groups: Sequence[ServedGroup], version: str) -> dict[str, Any]:
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": f"{AGGREGATED_GROUP}/{version}",
        "metadata": {},
        "items": [
            {
                "metadata": {"name": g.name, "creationTimestamp": None},
                "versions": [
                    {
                        "version": v,
                        "resources": _discovery_resources(g.current_resources()),
                        "freshness": "Current",
                    }
                    for v in g.versions
                ],
            }
            for g in groups
        ],
    }


def negotiate_aggregated(accept: str) -> str | None:
    """The aggregated discovery version the Accept header asks for first, if any (JSON only;
    a protobuf-only request falls back to the plain APIGroupList, which clients accept)."""
    for entry in accept.split(","):
        media, *raw_params = (part.strip() for part in entry.split(";"))
        params = dict(p.partition("=")[::2] for p in raw_params)
        if (
            media == "application/json"
            and params.get("g") == AGGREGATED_GROUP
            and params.get("as") == "APIGroupDiscoveryList"
            and params.get("v") in AGGREGATED_VERSIONS
        ):
            return params["v"]
    return None


def aggregated_content_type(version: str) -> str:
    return f"application/json;g={AGGREGATED_GROUP};v={version};as=APIGroupDiscoveryList"
