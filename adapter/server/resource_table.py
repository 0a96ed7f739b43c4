"""metrics.k8s.io answers converted as a client asked (`Accept: ...;as=Table;g=meta.k8s.io`):
the `meta.k8s.io` Table that `kubectl get pods.metrics.k8s.io` prints, and
PartialObjectMetadata(List).

Columns and cells are metrics-server's (`pkg/api/table.go`): Name, the usage names sorted
(cpu, memory), Window; a pod's usage is the sum of its containers'. Each row carries its object
as k8s.io/apiserver's `asTable` sets it from `?includeObject=`: PartialObjectMetadata (the
default, `Metadata`), the whole object (`Object`) or nothing (`None`).
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from adapter.apimachinery.quantity import (
    INT64_MAX,
    INT64_MIN,
    format_binary_si,
    format_decimal_si,
    parse_quantity_milli,
)
from adapter.errors import BadRequestError, NotAcceptableError
from adapter.golang.duration import format_go_duration
from adapter.golang.quote import go_quote
from adapter.providers.resource import NodeMetrics, PodMetrics
from adapter.server.negotiation import Conversion

__all__ = ["convert_resource_metrics"]

_INCLUDE_OBJECT = ("Metadata", "None", "Object")


def _sum(quantities: Sequence[str], render: Callable[[int], str]) -> str:
    # Quantity.Add of int64 amounts; a sum beyond int64 (never a real usage) saturates.
    total = sum(parse_quantity_milli(q) for q in quantities)
    return render(min(max(total, INT64_MIN), INT64_MAX))


def _column(name: str, value_format: str, description: str = "") -> dict[str, Any]:
    return {
        "name": name,
        "type": "string",
        "format": value_format,
        "description": description,
        "priority": 0,
    }


_COLUMNS = (
    _column("Name", "name", "Name of the resource"),
    _column("cpu", "quantity"),
    _column("memory", "quantity"),
    _column("Window", "duration"),
)


def _cells(item: NodeMetrics | PodMetrics) -> list[str]:
    if isinstance(item, NodeMetrics):
        cpu, memory = item.cpu, item.memory
    else:
        cpu = _sum([c.cpu for c in item.containers], format_decimal_si)
        memory = _sum([c.memory for c in item.containers], format_binary_si)
    return [item.name, cpu, memory, format_go_duration(item.window)]


def _partial(body: dict[str, Any], convert: Conversion) -> dict[str, Any]:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": convert.api_version,
        "metadata": body["metadata"],
    }


def _include_object(query: Mapping[str, str]) -> str:
    """TableOptions.includeObject, validated as ValidateTableOptions does."""
    value = query.get("includeObject", "")
    if value and value not in _INCLUDE_OBJECT:
        raise BadRequestError(
            "Unable to convert to Table as requested: includeObject: Invalid value: "
            f"{go_quote(value)}: must be 'Metadata', 'Object', 'None', or empty"
        )
    return value or "Metadata"


def convert_resource_metrics(
    items: Sequence[NodeMetrics | PodMetrics],
    convert: Conversion,
    typed_json: Callable[[NodeMetrics | PodMetrics], dict[str, Any]],
    query: Mapping[str, str],
    *,
    pods: bool,
    single: bool,
) -> dict[str, Any]:
    """`items` (a list answer, or one object when `single`) converted to `convert`'s kind;
    `typed_json` renders an object as served (kind and apiVersion included). Negotiation has
    allowed only Table, PartialObjectMetadata and PartialObjectMetadataList of meta.k8s.io."""
    # %T of the internal metrics-server object that Go converts.
    go_type = "*metrics." + ("PodMetrics" if pods else "NodeMetrics") + ("" if single else "List")
    if convert.kind == "Table":
        include = _include_object(query)
        rows = []
        for item in items:
            row: dict[str, Any] = {"cells": _cells(item)}
            if include == "None":
                row["object"] = None
            elif include == "Object":
                row["object"] = typed_json(item)
            else:
                row["object"] = _partial(typed_json(item), convert)
            rows.append(row)
        return {
            "kind": "Table",
            "apiVersion": convert.api_version,
            "metadata": {},
            # metrics-server sets the columns from the first object: none without objects.
            "columnDefinitions": list(_COLUMNS) if items else None,
            "rows": rows or None,
        }
    if convert.kind == "PartialObjectMetadataList":
        if single:
            raise NotAcceptableError(
                "you requested PartialObjectMetadataList, but the requested object is not a "
                f"list ({go_type})"
            )
        return {
            "kind": "PartialObjectMetadataList",
            "apiVersion": convert.api_version,
            "metadata": {},
            "items": [_partial(typed_json(item), convert) for item in items] or None,
        }
    if not single:
        raise NotAcceptableError(
            f"you requested PartialObjectMetadata, but the requested object is a list ({go_type})"
        )
    return _partial(typed_json(items[0]), convert)
