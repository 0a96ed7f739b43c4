"""The requests the HPA controller sends, built from HPA specs (no cluster)."""

from typing import Any

import pytest

from adapter.apimachinery.labels import parse_selector
from adapter.hpa.requests import build_request
from adapter.hpa.spec import SpecError, parse_hpa, parse_pod
from adapter.kube.rest_mapper import BUILTIN_RESOURCES, StaticRESTMapper

MAPPER = StaticRESTMapper(BUILTIN_RESOURCES)
WEB = parse_selector("app=web,tier in (a,b)")


def hpa(metric: dict[str, Any]) -> Any:
    return parse_hpa(
        {
            "metadata": {"name": "h", "namespace": "ns"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "maxReplicas": 5,
                "metrics": [metric],
            },
        }
    )


def url(metric: dict[str, Any], version: str = "v1beta2") -> str:
    spec = hpa(metric)
    return build_request(spec, spec.metrics[0], WEB, MAPPER, version).url


SELECTOR = {
    "matchLabels": {"verb": "GET"},
    "matchExpressions": [{"key": "code", "operator": "NotIn", "values": ["500", "404"]}],
}


@pytest.mark.parametrize(
    ("metric", "version", "expected"),
    [
        pytest.param(
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": "rps", "selector": SELECTOR},
                    "target": {"type": "AverageValue", "averageValue": "1"},
                },
            },
            "v1beta2",
            "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/pods/*/rps?labelSelector=app%3Dweb%2Ctier+in+%28a%2Cb%29&metricLabelSelector=code+notin+%28404%2C500%29%2Cverb%3DGET",
            id="pods: both selectors, sorted and encoded as Go's url.Values",
        ),
        pytest.param(
            {
                "type": "Object",
                "object": {
                    "describedObject": {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": "web",
                    },
                    "metric": {"name": "m"},
                    "target": {"type": "Value", "value": "1"},
                },
            },
            "v1beta1",
            "/apis/custom.metrics.k8s.io/v1beta1/namespaces/ns/deployments.apps/web/m",
            id="object: the group-qualified resource, the preferred version",
        ),
        pytest.param(
            {
                "type": "Object",
                "object": {
                    "describedObject": {"apiVersion": "v1", "kind": "Namespace", "name": "other"},
                    "metric": {"name": "m"},
                    "target": {"type": "Value", "value": "1"},
                },
            },
            "v1beta2",
            "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/metrics/m",
            id="object: a namespace is the HPA's own, root-scoped",
        ),
        pytest.param(
            {
                "type": "External",
                "external": {
                    "metric": {"name": "Queue_Depth", "selector": {"matchLabels": {"q": "a"}}},
                    "target": {"type": "Value", "value": "1"},
                },
            },
            "v1beta2",
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/queue_depth?labelSelector=q%3Da",
            id="external: client-go lower-cases the name",
        ),
        pytest.param(
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 50},
                },
            },
            "v1beta2",
            "/apis/metrics.k8s.io/v1beta1/namespaces/ns/pods?labelSelector=app%3Dweb%2Ctier+in+%28a%2Cb%29",
            id="resource",
        ),
    ],
)
def test_request_urls(metric: dict[str, Any], version: str, expected: str) -> None:
    assert url(metric, version) == expected


def test_unknown_kind_and_bad_quantity() -> None:
    spec = hpa(
        {
            "type": "Object",
            "object": {
                "describedObject": {"apiVersion": "example.com/v1", "kind": "Widget", "name": "w"},
                "metric": {"name": "m"},
                "target": {"type": "Value", "value": "1"},
            },
        }
    )
    with pytest.raises(SpecError, match=r"unable to map kind Widget\.example\.com"):
        build_request(spec, spec.metrics[0], WEB, MAPPER)
    with pytest.raises(SpecError, match="averageValue"):
        hpa(
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": "m"},
                    "target": {"type": "AverageValue", "averageValue": "1x"},
                },
            }
        )


def test_defaults_and_pods() -> None:
    spec = parse_hpa(
        {
            "metadata": {"name": "h"},
            "spec": {"maxReplicas": 3, "behavior": {"scaleUp": {"tolerance": "50m"}}},
        }
    )
    assert spec.min_replicas == 1 and spec.behavior
    assert (spec.metrics[0].type, spec.metrics[0].target.average_utilization) == ("Resource", 80)
    assert (spec.tolerances.down, spec.tolerances.up) == (0.1, 0.05)
    pod = parse_pod(
        {
            "metadata": {"name": "p", "deletionTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {
                "containers": [{"name": "a", "resources": {"requests": {"cpu": "250m"}}}],
                "initContainers": [
                    {
                        "name": "sidecar",
                        "restartPolicy": "Always",
                        "resources": {"requests": {"cpu": "0.5"}},
                    },
                    {"name": "init", "resources": {}},
                ],
            },
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]},
        }
    )
    assert pod.deleting and pod.ready == "False"
    assert pod.requests == {"cpu": 750} and pod.missing_request == {"memory": "a"}
