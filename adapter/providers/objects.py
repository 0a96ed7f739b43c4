"""Which objects a `*` request covers.

`ObjectLister` is the interface; the Kubernetes implementation (listing objects by label
selector) comes with cluster support. `PrometheusObjectLister` is the no-cluster mode: the
objects are those Prometheus has series for, in the request's namespace, and the
`labelSelector` is applied to the series' own labels (there are no object labels to apply it
to without a cluster).
"""

import time
from collections.abc import Callable, Mapping
from typing import Protocol

from adapter.apimachinery.labels import Selector
from adapter.discovery.registry import SeriesInfo
from adapter.discovery.relister import SeriesLister
from adapter.kube.rest_mapper import NAMESPACES, GroupResource
from adapter.naming.errors import NamingError
from adapter.naming.metrics_query import label_matcher
from adapter.prometheus.client import PrometheusError
from adapter.providers.querier import route

__all__ = ["ObjectListError", "ObjectLister", "PrometheusObjectLister"]


class ObjectListError(Exception):
    """The objects could not be listed (the API server or Prometheus failed)."""


class ObjectLister(Protocol):
    async def list_names(
        self, resource: GroupResource, namespace: str, selector: Selector, source: SeriesInfo
    ) -> list[str]:
        """Names of the `resource` objects in `namespace` ("" = cluster-wide) that match
        `selector`, in a stable order. `source` is the metric's series and rule."""
        ...


class PrometheusObjectLister:
    def __init__(
        self,
        series: SeriesLister,
        max_age: float,
        clock: Callable[[], float] = time.time,
        *,
        servers: Mapping[str, SeriesLister] | None = None,
    ) -> None:
        """`servers`: the named backends' clients, by name: a metric's objects are listed
        from the backend its rule names (`prometheusServer`), else from `series`."""
        self._series = series
        self._servers = servers
        self._max_age = max_age
        self._clock = clock

    async def list_names(
        self, resource: GroupResource, namespace: str, selector: Selector, source: SeriesInfo
    ) -> list[str]:
        converter = source.rule.converter
        try:
            label = converter.label_for_resource(resource)
            matchers = [label_matcher("__name__", "=", source.series_name)]
            if namespace:
                ns_label = converter.label_for_resource(NAMESPACES)
                matchers.append(label_matcher(ns_label, "=", namespace))
            matchers.append(label_matcher(label, "!=", ""))
        except NamingError as exc:
            raise ObjectListError(str(exc)) from None
        lister = route(source.rule.source.prometheus_server, self._series, self._servers)
        try:
            found = await lister.series(
                ["{" + ",".join(matchers) + "}"], start=self._clock() - self._max_age
            )
        except PrometheusError as exc:
            raise ObjectListError(str(exc)) from None
        return sorted({s[label] for s in found if s.get(label) and selector.matches(s)})
