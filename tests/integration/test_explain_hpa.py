"""`prometheus-adapter explain-hpa` against a real Prometheus with gauges this test exposes, the
fake kube-apiserver holding HPAs, a Deployment (its `scale` subresource), pods, a Service and
APIServices, and the miniature aggregator in front of it and the adapter (its own process).

Namespace shop, Deployment web (3 replicas, selector app=web), pods web-0/1/2:
- queue_length (per pod): 30, 50, 70;
- ingress_rps on Service web: 300;
- jobs_waiting (external): queue=orders 40, queue=payments 20;
- worker_backlog: per pod, but in a label (`instance_pod`) the rule does not map.
"""

import asyncio
import io
import json
import math
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from adapter.hpa.command import explain_hpa_main
from harness.adapter import AdapterProcess
from harness.aggregator import running_aggregator
from harness.exporter import Dataset, GaugeSpec, running_exporter
from harness.fake_kube_apiserver import FakeKubeAPIServer, running_fake_kube_apiserver
from harness.prometheus import PrometheusProcess

pytestmark = pytest.mark.asyncio(loop_scope="module")

REPO = Path(__file__).resolve().parents[2]
NS = "shop"
PODS = {"web-0": 30.0, "web-1": 50.0, "web-2": 70.0}
TOLERANCE = 0.1

CONFIG = """\
rules:
- seriesQuery: 'queue_length{namespace!="",pod!=""}'
  resources:
    overrides:
      namespace: {resource: namespace}
      pod: {resource: pod}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'
- seriesQuery: 'ingress_rps{namespace!="",service!=""}'
  resources:
    overrides:
      namespace: {resource: namespace}
      service: {resource: service}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'
- seriesQuery: 'worker_backlog{namespace!=""}'
  resources:
    overrides:
      namespace: {resource: namespace}
      pod: {resource: pod}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'
externalRules:
- seriesQuery: 'jobs_waiting{queue!=""}'
  resources:
    namespaced: false
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (queue)'
"""


def dataset() -> Dataset:
    gauges = [
        GaugeSpec("queue_length", {"namespace": NS, "pod": pod, "app": "web"}, value)
        for pod, value in PODS.items()
    ]
    gauges += [
        GaugeSpec("worker_backlog", {"namespace": NS, "instance_pod": pod}, value)
        for pod, value in PODS.items()
    ]
    gauges += [
        GaugeSpec("ingress_rps", {"namespace": NS, "service": "web"}, 300.0),
        GaugeSpec("jobs_waiting", {"queue": "orders"}, 40.0),
        GaugeSpec("jobs_waiting", {"queue": "payments"}, 20.0),
    ]
    return Dataset(gauges=tuple(gauges))


def pods_metric(name: str, average: str) -> dict[str, Any]:
    return {
        "type": "Pods",
        "pods": {
            "metric": {"name": name},
            "target": {"type": "AverageValue", "averageValue": average},
        },
    }


def hpa(name: str, metrics: list[dict[str, Any]], max_replicas: int = 10) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1,
            "maxReplicas": max_replicas,
            "metrics": metrics,
        },
        "status": {
            "currentReplicas": 3,
            "desiredReplicas": 3,
            "conditions": [
                {
                    "type": "ScalingActive",
                    "status": "False",
                    "reason": "FailedGetPodsMetric",
                    "message": "the HPA was unable to compute the replica count",
                }
            ],
        },
    }


OBJECT_METRIC = {
    "type": "Object",
    "object": {
        "describedObject": {"apiVersion": "v1", "kind": "Service", "name": "web"},
        "metric": {"name": "ingress_rps"},
        "target": {"type": "Value", "value": "100"},
    },
}
EXTERNAL_METRIC = {
    "type": "External",
    "external": {
        "metric": {"name": "jobs_waiting", "selector": {"matchLabels": {"queue": "orders"}}},
        "target": {"type": "AverageValue", "averageValue": "10"},
    },
}


def api_service(name: str, available: bool = True) -> dict[str, Any]:
    condition = {
        "type": "Available",
        "status": "True",
        "reason": "Passed",
        "message": "all checks passed",
    }
    if not available:
        condition = {
            "type": "Available",
            "status": "False",
            "reason": "FailedDiscoveryCheck",
            "message": "failing or missing response",
        }
    return {
        "metadata": {"name": name},
        "spec": {
            "service": {"namespace": "custom-metrics", "name": "prometheus-adapter"},
            "group": name.split(".", 1)[1],
            "version": name.split(".", maxsplit=1)[0],
        },
        "status": {"conditions": [condition]},
    }


def populate(kube: FakeKubeAPIServer) -> None:
    kube.add_object("v1/namespaces", {"metadata": {"name": NS}})
    kube.add_object("apps/v1/deployments", {
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}},
        "status": {"replicas": 3},
    })  # fmt: skip
    for pod in PODS:
        kube.add_object("v1/pods", {
            "metadata": {"name": pod, "namespace": NS, "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]},
            "status": {"phase": "Running", "startTime": "2024-01-01T00:00:00Z", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:10Z"}]},
        })  # fmt: skip
    kube.add_object("v1/pods", {"metadata": {"name": "db-0", "namespace": NS, "labels": {"app": "db"}}, "status": {"phase": "Running"}})  # fmt: skip
    kube.add_object("v1/services", {"metadata": {"name": "web", "namespace": NS}, "spec": {"selector": {"app": "web"}}})  # fmt: skip
    for service in (
        "v1beta2.custom.metrics.k8s.io",
        "v1beta1.custom.metrics.k8s.io",
        "v1beta1.external.metrics.k8s.io",
    ):
        kube.add_object("apiregistration.k8s.io/v1/apiservices", api_service(service))
    kube.add_object("autoscaling/v2/horizontalpodautoscalers", hpa("web", [pods_metric("queue_length", "25"), OBJECT_METRIC, EXTERNAL_METRIC]))  # fmt: skip
    kube.add_object("autoscaling/v2/horizontalpodautoscalers", hpa("typo", [pods_metric("queue_lenght", "25")]))  # fmt: skip
    kube.add_object("autoscaling/v2/horizontalpodautoscalers", hpa("backlog", [pods_metric("worker_backlog", "25")]))  # fmt: skip


@dataclass
class Cluster:
    kube: FakeKubeAPIServer
    prometheus: PrometheusProcess
    config: Path
    kubeconfig: Path  # the aggregator's: core API + the metrics APIs

    def argv(self, *extra: str) -> list[str]:
        return [
            "--config", str(self.config), "--kubeconfig", str(self.kubeconfig),
            "--prometheus-url", self.prometheus.url, "-n", NS, *extra,
        ]  # fmt: skip


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(tmp_path_factory: Any) -> AsyncIterator[Cluster]:
    workdir = tmp_path_factory.mktemp("explain-hpa")
    config = workdir / "config.yaml"
    config.write_text(CONFIG)
    async with running_exporter(dataset()) as exporter, running_fake_kube_apiserver() as kube:
        populate(kube)
        prometheus = PrometheusProcess([exporter.target])
        adapter = AdapterProcess(config, prometheus.url)
        try:
            await prometheus.start()
            # One scrape carries every gauge.
            await prometheus.wait_for_series(
                '{__name__=~"queue_length|worker_backlog|ingress_rps|jobs_waiting"}', count=9
            )
            await adapter.start()
            groups = ["custom.metrics.k8s.io", "external.metrics.k8s.io", "metrics.k8s.io"]
            async with running_aggregator(
                kube, adapter.url, adapter.ssl_context(), groups
            ) as aggregator:
                yield Cluster(
                    kube, prometheus, config, aggregator.kubeconfig(workdir / "kubeconfig")
                )
        finally:
            await adapter.close()
            await prometheus.close()


async def run(*argv: str) -> tuple[int, str, str]:
    """The command in-process; it runs its own event loop, so in a worker thread."""
    out, err = io.StringIO(), io.StringIO()
    code = await asyncio.to_thread(explain_hpa_main, list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


async def explain_json(cluster: Cluster, name: str) -> tuple[int, dict[str, Any]]:
    code, out, err = await run(*cluster.argv(name, "-o", "json"))
    assert out, err
    [report] = json.loads(out)["hpas"]
    return code, report


def controller_formula(current: int, ratio: float) -> int:
    """The documented algorithm: ceil(current x ratio), no change within the tolerance."""
    return current if abs(1.0 - ratio) <= TOLERANCE else math.ceil(current * ratio)


async def test_every_metric_works_and_matches_the_documented_formula(cluster: Cluster) -> None:
    code, report = await explain_json(cluster, "web")
    assert code == 0, report
    assert report["ok"] and report["scaleTarget"]["selector"] == "app=web"
    assert report["pods"] == {
        "count": 3,
        "runningAndReady": 3,
        "names": ["web-0", "web-1", "web-2"],
    }
    pods, service, external = report["metrics"]
    # Pods: the average of 30, 50, 70 is 50 for a target of 25.
    assert pods["request"]["url"] == (
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/*/queue_length?labelSelector=app%3Dweb"
    )
    assert pods["values"] == {"web-0": "30", "web-1": "50", "web-2": "70"}
    average = sum(PODS.values()) / len(PODS)
    assert pods["calculation"]["ratio"] == pytest.approx(average / 25)
    assert pods["calculation"]["replicas"] == controller_formula(3, average / 25) == 6
    # Object: the Service's 300 for a value target of 100.
    assert (
        service["request"]["path"]
        == "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/services/web/ingress_rps"
    )
    assert service["calculation"]["replicas"] == controller_formula(3, 300 / 100) == 9
    # External, averageValue: the selected series only (orders: 40), over the 3 replicas.
    assert external["request"]["url"] == (
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/jobs_waiting?labelSelector=queue%3Dorders"
    )
    assert external["values"] == ["40"]
    assert external["calculation"]["ratio"] == pytest.approx(40 / (10 * 3), abs=1e-4)
    assert external["calculation"]["replicas"] == math.ceil(40 / 10) == 4
    # The largest proposal, limited to max(2 x 3, 4) = 6 in one step.
    desired = report["desired"]
    assert desired["fromMetrics"] == 9
    assert (desired["replicas"], desired["reason"]) == (min(9, max(2 * 3, 4), 10), "ScaleUpLimit")
    # Through the aggregator: the same values, APIServices available, nothing to fix.
    for metric in report["metrics"]:
        assert metric["aggregator"]["status"] == 200, metric["aggregator"]
        assert metric["aggregator"]["values"] == metric["values"]
        assert metric["aggregator"]["apiService"]["available"] == "True"
        assert metric["diagnosis"] == []
    assert report["status"]["conditions"][0]["reason"] == "FailedGetPodsMetric"


async def test_metric_name_typo_suggests_the_closest_rule(cluster: Cluster) -> None:
    code, report = await explain_json(cluster, "typo")
    assert code == 1 and not report["ok"]
    [metric] = report["metrics"]
    assert metric["calculation"] is None
    assert "queue_lenght" in metric["error"]
    assert metric["rules"]["status"] == 404
    first = metric["diagnosis"][0]
    assert first["rule"] == "rules[0]"
    assert "names its metric queue_length, not queue_lenght" in first["problem"]
    assert "ask for queue_length" in first["fix"]
    assert metric["aggregator"]["status"] == 404
    assert report["desired"]["fromMetrics"] is None and report["desired"]["replicas"] == 3


async def test_label_mapping_that_misses_the_pods(cluster: Cluster) -> None:
    code, report = await explain_json(cluster, "backlog")
    assert code == 1
    [metric] = report["metrics"]
    backlog = next(d for d in metric["diagnosis"] if d.get("rule") == "rules[2]")
    assert "worker_backlog is served for namespaces, not pods" in backlog["problem"]
    assert "{instance_pod: {resource: pod}}" in backlog["fix"]


async def test_stale_api_service_is_shown(cluster: Cluster) -> None:
    name = "v1beta1.external.metrics.k8s.io"
    cluster.kube.update_object(
        "apiregistration.k8s.io/v1/apiservices", api_service(name, available=False)
    )
    try:
        code, report = await explain_json(cluster, "web")
    finally:
        cluster.kube.update_object("apiregistration.k8s.io/v1/apiservices", api_service(name))
    external = report["metrics"][2]
    # The rules still answer: the controller's arithmetic is shown from them.
    assert external["calculation"]["replicas"] == 4 and code == 0
    assert external["aggregator"]["status"] == 503
    problems = [d["problem"] for d in external["diagnosis"]]
    assert any("is not Available: FailedDiscoveryCheck" in p for p in problems), problems


async def test_text_output_as_a_subprocess(cluster: Cluster) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "adapter", "explain-hpa", *cluster.argv("typo"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=REPO,
    )  # fmt: skip
    out, err = await process.communicate()
    text = out.decode()
    assert process.returncode == 1, err.decode()
    assert "HPA shop/typo -> Deployment/web" in text
    assert (
        "request      GET /apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/*/queue_lenght?labelSelector=app%3Dweb"
        in text
    )
    assert "[rules[0]] problem: rules[0]: names its metric queue_length, not queue_lenght" in text
    assert "desired replicas: 3" in text


async def test_kube_apiserver_unreachable(cluster: Cluster, tmp_path: Path) -> None:
    text = cluster.kubeconfig.read_text()
    port = text.split("https://127.0.0.1:")[1].split("'")[0]
    broken = tmp_path / "kubeconfig"
    broken.write_text(text.replace(f"127.0.0.1:{port}", "127.0.0.1:1"))
    argv = cluster.argv("web")
    argv[argv.index("--kubeconfig") + 1] = str(broken)
    code, _, err = await run(*argv)
    assert code == 2 and "cannot reach kube-apiserver" in err
