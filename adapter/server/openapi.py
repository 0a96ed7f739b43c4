"""OpenAPI documents for the groups this adapter serves (and only those: the aggregator merges
every server's spec, and two servers publishing one path breaks the merged document).

`/openapi/v2` is Swagger 2.0; `/openapi/v3` is the discovery map and
`/openapi/v3/apis/<group>/<version>` one OpenAPI 3.0 document per group-version.
"""

import hashlib
from collections.abc import Sequence
from typing import Any

import orjson

__all__ = ["GroupVersionSpec", "openapi_v2", "openapi_v3_document", "openapi_v3_index"]

TITLE = "prometheus-metrics-adapter"
VERSION = "1.0.0"

_OBJECT_REFERENCE = {
    "type": "object",
    "properties": {k: {"type": "string"} for k in ("kind", "namespace", "name", "apiVersion")},
}
_LABEL_SELECTOR = {"type": "object", "x-kubernetes-map-type": "atomic"}
_QUANTITY = {"type": "string", "description": "a Kubernetes resource.Quantity, e.g. 16m"}
_TIME = {"type": "string", "format": "date-time"}


def _list(kind: str, item: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items"],
        "properties": {
            "kind": {"type": "string"},
            "apiVersion": {"type": "string"},
            "metadata": {"type": "object"},
            "items": {"type": "array", "items": item},
        },
        "x-kubernetes-group-version-kind": [{"kind": kind}],
    }


def _custom_item(version: str) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "describedObject": _OBJECT_REFERENCE,
        "timestamp": _TIME,
        "value": _QUANTITY,
    }
    if version == "v1beta1":
        properties |= {"metricName": {"type": "string"}, "selector": _LABEL_SELECTOR}
    else:
        properties["metric"] = {
            "type": "object",
            "properties": {"name": {"type": "string"}, "selector": _LABEL_SELECTOR},
        }
    return {"type": "object", "properties": properties}


_EXTERNAL_ITEM = {
    "type": "object",
    "properties": {
        "metricName": {"type": "string"},
        "metricLabels": {"type": "object", "additionalProperties": {"type": "string"}},
        "timestamp": _TIME,
        "value": _QUANTITY,
    },
}


_NODE_METRICS = {
    "type": "object",
    "properties": {
        "metadata": {"type": "object"},
        "timestamp": _TIME,
        "window": {"type": "string"},
        "usage": {"type": "object", "additionalProperties": _QUANTITY},
    },
}
_POD_METRICS = {
    "type": "object",
    "properties": {
        "metadata": {"type": "object"},
        "timestamp": _TIME,
        "window": {"type": "string"},
        "containers": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "usage": {"type": "object", "additionalProperties": _QUANTITY},
                },
            },
        },
    },
}


class GroupVersionSpec:
    """The paths and schemas of one served group-version; each path names its kind."""

    def __init__(self, group: str, version: str) -> None:
        self.group = group
        self.version = version
        prefix = f"/apis/{group}/{version}"
        ns = f"{prefix}/namespaces/{{namespace}}"
        self.paths: dict[str, tuple[tuple[str, ...], str]]
        if group == "custom.metrics.k8s.io":
            self.schemas = {"MetricValueList": _list("MetricValueList", _custom_item(version))}
            kind = "MetricValueList"
            self.paths = {
                f"{prefix}/{{resource}}/{{name}}/{{metric}}": (
                    ("resource", "name", "metric"),
                    kind,
                ),
                f"{ns}/{{resource}}/{{name}}/{{metric}}": (
                    ("namespace", "resource", "name", "metric"),
                    kind,
                ),
                f"{ns}/metrics/{{metric}}": (("namespace", "metric"), kind),
            }
            self.queries: tuple[str, ...] = (
                "labelSelector",
                "metricLabelSelector",
                "fieldSelector",
            )
        elif group == "metrics.k8s.io":
            self.schemas = {
                "NodeMetricsList": _list("NodeMetricsList", _NODE_METRICS),
                "NodeMetrics": _NODE_METRICS,
                "PodMetricsList": _list("PodMetricsList", _POD_METRICS),
                "PodMetrics": _POD_METRICS,
            }
            self.paths = {
                f"{prefix}/nodes": ((), "NodeMetricsList"),
                f"{prefix}/nodes/{{name}}": (("name",), "NodeMetrics"),
                f"{prefix}/pods": ((), "PodMetricsList"),
                f"{ns}/pods": (("namespace",), "PodMetricsList"),
                f"{ns}/pods/{{name}}": (("namespace", "name"), "PodMetrics"),
            }
            self.queries = ("labelSelector", "fieldSelector")
        else:
            kind = "ExternalMetricValueList"
            self.schemas = {kind: _list(kind, _EXTERNAL_ITEM)}
            self.paths = {f"{ns}/{{metric}}": (("namespace", "metric"), kind)}
            self.queries = ("labelSelector",)

    def schema_name(self, kind: str) -> str:
        return f"{self.group}.{self.version}.{kind}"

    def operations(self, ref_prefix: str) -> dict[str, Any]:
        ops = {}
        for path, (params, kind) in self.paths.items():
            parameters = [
                {"name": p, "in": "path", "required": True, "type": "string"} for p in params
            ] + [{"name": q, "in": "query", "type": "string"} for q in self.queries]
            ref = f"{ref_prefix}{self.schema_name(kind)}"
            ops[path] = {
                "get": {
                    "operationId": f"get{kind}{self.version}{len(params)}",
                    "tags": [f"{self.group}_{self.version}"],
                    "produces": ["application/json"],
                    "parameters": parameters,
                    "responses": {"200": {"description": "OK", "schema": {"$ref": ref}}},
                }
            }
        return ops

    def named_schemas(self) -> dict[str, Any]:
        return {self.schema_name(kind): schema for kind, schema in self.schemas.items()}


def openapi_v2(specs: Sequence[GroupVersionSpec]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    definitions: dict[str, Any] = {}
    for spec in specs:
        paths |= spec.operations("#/definitions/")
        definitions |= spec.named_schemas()
    return {
        "swagger": "2.0",
        "info": {"title": TITLE, "version": VERSION},
        "paths": paths,
        "definitions": definitions,
    }


def openapi_v3_document(spec: GroupVersionSpec) -> dict[str, Any]:
    paths = {}
    for path, item in spec.operations("#/components/schemas/").items():
        get = dict(item["get"])
        get.pop("produces")
        get["parameters"] = [
            {
                "name": p["name"],
                "in": p["in"],
                "required": p.get("required", False),
                "schema": {"type": "string"},
            }
            for p in get["parameters"]
        ]
        ref = item["get"]["responses"]["200"]["schema"]
        get["responses"] = {
            "200": {"description": "OK", "content": {"application/json": {"schema": ref}}}
        }
        paths[path] = {"get": get}
    return {
        "openapi": "3.0.0",
        "info": {"title": TITLE, "version": VERSION},
        "paths": paths,
        "components": {"schemas": spec.named_schemas()},
    }


def openapi_v3_index(specs: Sequence[GroupVersionSpec]) -> dict[str, Any]:
    index = {}
    for spec in specs:
        digest = hashlib.sha512(orjson.dumps(openapi_v3_document(spec))).hexdigest()[:64].upper()
        index[f"apis/{spec.group}/{spec.version}"] = {
            "serverRelativeURL": f"/openapi/v3/apis/{spec.group}/{spec.version}?hash={digest}"
        }
    return {"paths": index}
