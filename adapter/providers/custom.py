"""custom.metrics.k8s.io: a metric of one object, or of every object matching a selector.

Port of the Go adapter's `pkg/custom-provider/provider.go`. The request's resource is
normalised through the REST mapper and looked up in the registry; the rule renders the PromQL;
Prometheus answers an instant vector whose samples are matched to objects by the resource's
label. Status codes and messages are the Go adapter's: an unknown metric, or a query the rule
cannot build, is a 404; a Prometheus failure is a 500 "unable to fetch metrics".
"""

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from adapter.discovery.registry import CustomMetricInfo, MetricRegistry, SeriesInfo
from adapter.errors import InternalError, UnknownError, metric_not_found
from adapter.kube.rest_mapper import GroupResource, NoResourceMatchError, RESTMapper
from adapter.naming.errors import NamingError
from adapter.prometheus.client import PrometheusError
from adapter.promql.label_selector import Selector, SelectorError, to_label_selector
from adapter.promql.quantity import decimal_si_quantity
from adapter.providers.objects import ObjectLister, ObjectListError
from adapter.providers.querier import MetricQuerier

__all__ = ["CustomMetricsProvider", "MetricValue", "ObjectReference"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ObjectReference:
    kind: str
    name: str
    namespace: str
    api_version: str

    def as_json(self) -> dict[str, str]:
        ref = {"kind": self.kind}
        if self.namespace:
            ref["namespace"] = self.namespace
        ref["name"] = self.name
        ref["apiVersion"] = self.api_version
        return ref


@dataclass(frozen=True, slots=True)
class MetricValue:
    described_object: ObjectReference
    metric: str
    timestamp: float
    value: str
    selector: dict[str, Any] | None


class CustomMetricsProvider:
    def __init__(
        self,
        registry: Callable[[], MetricRegistry],
        prometheus: MetricQuerier,
        objects: ObjectLister,
        mapper: RESTMapper,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._registry = registry
        self._prometheus = prometheus
        self._objects = objects
        self._mapper = mapper
        self._clock = clock

    def list_all_metrics(self) -> list[CustomMetricInfo]:
        return sorted(self._registry().custom, key=lambda i: (str(i.group_resource), i.metric))

    def _normalise(self, resource: GroupResource) -> GroupResource:
        try:
            return self._mapper.resource_for(resource).group_resource
        except NoResourceMatchError:
            # Unknown to the mapper (a custom resource in no-cluster mode): as written.
            return GroupResource(resource.group, resource.resource.lower())

    def _lookup(
        self, resource: GroupResource, namespaced: bool, metric: str
    ) -> tuple[GroupResource, SeriesInfo]:
        normalised = self._normalise(resource)
        found = self._registry().lookup_custom(CustomMetricInfo(normalised, namespaced, metric))
        if found is None:
            raise metric_not_found(resource, metric)
        return normalised, found

    def _reference(self, resource: GroupResource, namespace: str, name: str) -> ObjectReference:
        try:
            info = self._mapper.resource_for(resource)
            kind, api_version = info.kind, info.api_version
        except NoResourceMatchError:
            # No-cluster mode and a resource the built-in table lacks: the best guess.
            singular = resource.resource.removesuffix("s")
            kind, api_version = singular[:1].upper() + singular[1:], f"{resource.group}/v1"
        return ObjectReference(kind, name, namespace, api_version)

    async def _query(
        self,
        resource: GroupResource,
        request_resource: GroupResource,
        namespace: str,
        names: Sequence[str],
        series: SeriesInfo,
        metric: str,
        metric_selector: Selector,
    ) -> dict[str, float]:
        """Run the rule's query for `names`; returns value by object name (last sample wins)."""
        rule = series.rule
        try:
            query = rule.query.build(
                series.series_name, resource, namespace, names, metric_selector
            )
            label = rule.converter.label_for_resource(resource)
        except NamingError as exc:
            # The Go registry logs this and answers "not found".
            log.error("unable to construct query for metric %s/%s: %s", resource, metric, exc)
            raise metric_not_found(request_resource, metric) from None
        try:
            result = await self._prometheus.query(query)
        except PrometheusError as exc:
            log.error("unable to fetch metrics from prometheus: %s (query %s)", exc, query)
            raise InternalError("unable to fetch metrics") from None
        if result.result_type != "vector":
            log.error("unexpected result type %s for query %s", result.result_type, query)
            raise InternalError("unable to fetch metrics")
        values: dict[str, float] = {}
        for sample in result.samples:
            name = sample.labels.get(label)
            if name:
                values[name] = sample.value
        return values

    def _value(
        self,
        resource: GroupResource,
        namespace: str,
        name: str,
        metric: str,
        value: float,
        metric_selector: Selector,
    ) -> MetricValue:
        selector = None
        if not metric_selector.empty():
            try:
                selector = to_label_selector(metric_selector)
            except SelectorError as exc:
                # As in Go: a `!=` requirement cannot be echoed back, and fails the request.
                raise UnknownError(str(exc)) from None
        return MetricValue(
            described_object=self._reference(resource, namespace, name),
            metric=metric,
            timestamp=self._clock(),
            value=decimal_si_quantity(value),
            selector=selector,
        )

    async def get_metric_by_name(
        self,
        resource: GroupResource,
        namespace: str,
        name: str,
        metric: str,
        metric_selector: Selector,
    ) -> MetricValue:
        normalised, series = self._lookup(resource, bool(namespace), metric)
        values = await self._query(
            normalised, resource, namespace, [name], series, metric, metric_selector
        )
        if name not in values:
            raise metric_not_found(resource, metric, name)
        return self._value(normalised, namespace, name, metric, values[name], metric_selector)

    async def get_metric_by_selector(
        self,
        resource: GroupResource,
        namespace: str,
        selector: Selector,
        metric: str,
        metric_selector: Selector,
    ) -> list[MetricValue]:
        normalised, series = self._lookup(resource, bool(namespace), metric)
        try:
            names = await self._objects.list_names(normalised, namespace, selector, series)
        except ObjectListError as exc:
            log.error("unable to list matching resource names: %s", exc)
            raise InternalError("unable to list matching resources") from None
        if not names:
            # The Go registry refuses to build a query for no objects.
            raise metric_not_found(resource, metric)
        values = await self._query(
            normalised, resource, namespace, names, series, metric, metric_selector
        )
        return [
            self._value(normalised, namespace, name, metric, values[name], metric_selector)
            for name in names
            if name in values
        ]
