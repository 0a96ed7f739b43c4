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


class GroupVersionSpec:
    """The paths and schemas of one served group-version."""

    def __init__(self, group: str, version: str) -> None:
        self.group = group
        self.version = version
        prefix = f"/apis/{group}/{version}"
        if group == "custom.metrics.k8s.io":
            self.kind = "MetricValueList"
            self.schema = _list(self.kind, _custom_item(version))
            self.paths = {
                f"{prefix}/{{resource}}/{{name}}/{{metric}}": ("resource", "name", "metric"),
                f"{prefix}/namespaces/{{namespace}}/{{resource}}/{{name}}/{{metric}}": (
                    "namespace", "resource", "name", "metric",
                ),
                f"{prefix}/namespaces/{{namespace}}/metrics/{{metric}}": ("namespace", "metric"),
            }  # fmt: skip
            self.queries: tuple[str, ...] = (
                "labelSelector",
                "metricLabelSelector",
                "fieldSelector",
            )
        else:
            self.kind = "ExternalMetricValueList"
            self.schema = _list(self.kind, _EXTERNAL_ITEM)
            self.paths = {f"{prefix}/namespaces/{{namespace}}/{{metric}}": ("namespace", "metric")}
            self.queries = ("labelSelector",)
        self.schema_name = f"{group}.{version}.{self.kind}"

    def operations(self, ref: str) -> dict[str, Any]:
        ops = {}
        for path, params in self.paths.items():
            parameters = [
                {"name": p, "in": "path", "required": True, "type": "string"} for p in params
            ] + [{"name": q, "in": "query", "type": "string"} for q in self.queries]
            ops[path] = {
                "get": {
                    "operationId": f"get{self.kind}{self.version}{len(params)}",
                    "tags": [f"{self.group}_{self.version}"],
                    "produces": ["application/json"],
                    "parameters": parameters,
                    "responses": {"200": {"description": "OK", "schema": {"$ref": ref}}},
                }
            }
        return ops


def openapi_v2(specs: Sequence[GroupVersionSpec]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    definitions: dict[str, Any] = {}
    for spec in specs:
        paths |= spec.operations(f"#/definitions/{spec.schema_name}")
        definitions[spec.schema_name] = spec.schema
    return {
        "swagger": "2.0",
        "info": {"title": TITLE, "version": VERSION},
        "paths": paths,
        "definitions": definitions,
    }


def openapi_v3_document(spec: GroupVersionSpec) -> dict[str, Any]:
    paths = {}
    for path, item in spec.operations(f"#/components/schemas/{spec.schema_name}").items():
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
        get["responses"] = {
            "200": {
                "description": "OK",
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{spec.schema_name}"}
                    }
                },
            }
        }
        paths[path] = {"get": get}
    return {
        "openapi": "3.0.0",
        "info": {"title": TITLE, "version": VERSION},
        "paths": paths,
        "components": {"schemas": {spec.schema_name: spec.schema}},
    }


def openapi_v3_index(specs: Sequence[GroupVersionSpec]) -> dict[str, Any]:
    index = {}
    for spec in specs:
        digest = hashlib.sha512(orjson.dumps(openapi_v3_document(spec))).hexdigest()[:64].upper()
        index[f"apis/{spec.group}/{spec.version}"] = {
            "serverRelativeURL": f"/openapi/v3/apis/{spec.group}/{spec.version}?hash={digest}"
        }
    return {"paths": index}
