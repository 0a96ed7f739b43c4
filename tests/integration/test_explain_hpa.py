"""`prometheus-adapter explain-hpa` against a real Prometheus with gauges this test exposes, the
fake kube-apiserver holding HPAs, a Deployment (its `scale` subresource), pods, a Service and
APIServices, and the miniature aggregator in front of it and the adapter (its own process).

Namespace shop, Deployment web (3 replicas, selector app=web), pods web-0/1/2:
- queue_length (per pod): 30, 50, 70;
- ingress_rps on Service web: 300;
- jobs_waiting (external): queue=orders 40, queue=payments 20;
- worker_backlog: per pod, but in a label (`instance_pod`) the rule does not map;
- cpu (resourceRules, gauges in cores): 0.12, 0.09, 0.15 for requests of 100m each.
Deployment api (3 replicas, selector app=api), pods api-0/1/2: queue_length 30 and 50 for
api-0 and api-1, no series for api-2. Deployment ghost (selector app=ghost): no pods.
"""

import asyncio
import io
import json
import math
import ssl
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from adapter.hpa.command import explain_hpa_main
from harness.adapter import AdapterProcess
from harness.aggregator import Aggregator, running_aggregator
from harness.exporter import Dataset, GaugeSpec, running_exporter
from harness.fake_kube_apiserver import (
    FakeKubeAPIServer,
    UserInfo,
    running_fake_kube_apiserver,
)
from harness.prometheus import PrometheusProcess
from harness.recording_proxy import running_recording_proxy

pytestmark = pytest.mark.asyncio(loop_scope="module")

REPO = Path(__file__).resolve().parents[2]
NS = "shop"
PODS = {"web-0": 30.0, "web-1": 50.0, "web-2": 70.0}
API_PODS = {"api-0": 30.0, "api-1": 50.0}  # api-2 exists, without a series
CPU_CORES = {"web-0": 0.12, "web-1": 0.09, "web-2": 0.15}
CPU_REQUEST_MILLI = 100  # each web pod's
TOLERANCE = 0.1
CUSTOM = "custom.metrics.k8s.io"

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
resourceRules:
  cpu:
    containerQuery: 'sum by (<<.GroupBy>>) (pod_cpu_cores{<<.LabelMatchers>>})'
    nodeQuery: 'sum by (<<.GroupBy>>) (node_cpu_cores{<<.LabelMatchers>>})'
    resources:
      overrides:
        namespace: {resource: namespace}
        pod: {resource: pod}
        node: {resource: node}
    containerLabel: container
  memory:
    containerQuery: 'sum by (<<.GroupBy>>) (pod_memory_bytes{<<.LabelMatchers>>})'
    nodeQuery: 'sum by (<<.GroupBy>>) (node_memory_bytes{<<.LabelMatchers>>})'
    resources:
      overrides:
        namespace: {resource: namespace}
        pod: {resource: pod}
        node: {resource: node}
    containerLabel: container
  window: 1m
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
        GaugeSpec("queue_length", {"namespace": NS, "pod": pod, "app": "api"}, value)
        for pod, value in API_PODS.items()
    ]
    for pod, cores in CPU_CORES.items():
        # `app`: the adapter process (no cluster) applies the selector to the series' labels.
        labels = {"namespace": NS, "pod": pod, "container": "web", "app": "web"}
        gauges.append(GaugeSpec("pod_cpu_cores", labels, cores))
        gauges.append(GaugeSpec("pod_memory_bytes", labels, 64 * 1024 * 1024))
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


def hpa(
    name: str, metrics: list[dict[str, Any]], max_replicas: int = 10, target: str = "web"
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
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


CPU_UTILIZATION = 50
CPU_METRIC = {
    "type": "Resource",
    "resource": {
        "name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": CPU_UTILIZATION},
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
    for app in ("web", "api", "ghost"):
        kube.add_object("apps/v1/deployments", {
            "metadata": {"name": app, "namespace": NS},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": app}}},
            "status": {"replicas": 3},
        })  # fmt: skip
    for pod in [*PODS, "api-0", "api-1", "api-2"]:
        kube.add_object("v1/pods", {
            "metadata": {"name": pod, "namespace": NS, "labels": {"app": pod.split("-")[0]}},
            "spec": {"containers": [{"name": "web", "resources": {"requests": {"cpu": f"{CPU_REQUEST_MILLI}m", "memory": "64Mi"}}}]},
            "status": {"phase": "Running", "startTime": "2024-01-01T00:00:00Z", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:10Z"}]},
        })  # fmt: skip
    kube.add_object("v1/pods", {"metadata": {"name": "db-0", "namespace": NS, "labels": {"app": "db"}}, "status": {"phase": "Running"}})  # fmt: skip
    kube.add_object("v1/services", {"metadata": {"name": "web", "namespace": NS}, "spec": {"selector": {"app": "web"}}})  # fmt: skip
    for service in (
        "v1beta2.custom.metrics.k8s.io",
        "v1beta1.custom.metrics.k8s.io",
        "v1beta1.external.metrics.k8s.io",
        "v1beta1.metrics.k8s.io",
    ):
        kube.add_object("apiregistration.k8s.io/v1/apiservices", api_service(service))
    kube.add_object("autoscaling/v2/horizontalpodautoscalers", hpa("web", [pods_metric("queue_length", "25"), OBJECT_METRIC, EXTERNAL_METRIC]))  # fmt: skip
    kube.add_object("autoscaling/v2/horizontalpodautoscalers", hpa("typo", [pods_metric("queue_lenght", "25")]))  # fmt: skip
    kube.add_object("autoscaling/v2/horizontalpodautoscalers", hpa("backlog", [pods_metric("worker_backlog", "25")]))  # fmt: skip
    kube.add_object("autoscaling/v2/horizontalpodautoscalers", hpa("ghost", [pods_metric("queue_length", "25")], target="ghost"))  # fmt: skip
    # api: the average of 30 and 50 is 40, above a target of 10 and below one of 80.
    kube.add_object("autoscaling/v2/horizontalpodautoscalers", hpa("api-up", [pods_metric("queue_length", "10")], target="api"))  # fmt: skip
    kube.add_object("autoscaling/v2/horizontalpodautoscalers", hpa("api-down", [pods_metric("queue_length", "80")], target="api"))  # fmt: skip
    kube.add_object("autoscaling/v2/horizontalpodautoscalers", hpa("cpu", [CPU_METRIC]))  # fmt: skip


@dataclass
class Cluster:
    kube: FakeKubeAPIServer
    prometheus: PrometheusProcess
    config: Path
    kubeconfig: Path  # the aggregator's: core API + the metrics APIs
    aggregator: Aggregator

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
                '{__name__=~"queue_length|worker_backlog|ingress_rps|jobs_waiting|pod_cpu_cores'
                '|pod_memory_bytes"}',
                count=len(dataset().gauges),
            )
            await adapter.start()
            groups = ["custom.metrics.k8s.io", "external.metrics.k8s.io", "metrics.k8s.io"]
            async with running_aggregator(
                kube, adapter.url, adapter.ssl_context(), groups
            ) as aggregator:
                yield Cluster(
                    kube,
                    prometheus,
                    config,
                    aggregator.kubeconfig(workdir / "kubeconfig"),
                    aggregator,
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


JANE_TOKEN = "9f3c7d21e5b04a68"
RBAC_FIX = (
    "RBAC: grant get on the metrics API to the kubeconfig's user (the HPA controller has it "
    "through system:controller:horizontal-pod-autoscaler)"
)
PODS_PATH = f"/apis/{CUSTOM}/v1beta2/namespaces/{NS}/pods/*/queue_length?labelSelector=app%3Dweb"


async def get_as(aggregator: Aggregator, token: str, path: str) -> tuple[int, Any]:
    context = ssl.create_default_context(cafile=str(aggregator.ca_file))
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            aggregator.url + path, headers={"Authorization": f"Bearer {token}"}, ssl=context
        ) as response,
    ):
        return response.status, await response.json(content_type=None)


def explain_argv(cluster: Cluster, kubeconfig: Path, *extra: str) -> list[str]:
    argv = cluster.argv(*extra)
    argv[argv.index("--kubeconfig") + 1] = str(kubeconfig)
    return argv


async def test_rbac_forbidden_metric_path(cluster: Cluster, tmp_path: Path) -> None:
    """jane may read the cluster and the Service's and external metrics, not the pods':
    the aggregator asks the fake's access table (a SubjectAccessReview) and answers
    kube-apiserver's 403; the rules still answer, so the arithmetic stands."""
    kube = cluster.kube
    # A token that shares no start with the name: the client redacts a token's cut-off start.
    kube.client_tokens[JANE_TOKEN] = UserInfo("jane", groups=("system:authenticated",))
    grants = [
        kube.allow(user="jane", verb="get", group_name=CUSTOM, resource="services"),
        kube.allow(user="jane", verb="list", group_name="external.metrics.k8s.io"),
    ]
    kubeconfig = cluster.aggregator.kubeconfig(tmp_path / "jane", token=JANE_TOKEN)
    try:
        code, out, err = await run(*explain_argv(cluster, kubeconfig, "web", "-o", "json"))
        text_code, text, _ = await run(*explain_argv(cluster, kubeconfig, "web"))
        status, body = await get_as(cluster.aggregator, JANE_TOKEN, PODS_PATH)
    finally:
        for rule in grants:
            kube.rules.remove(rule)
        del kube.client_tokens[JANE_TOKEN]
    # The metrics are computed from the rules: jane's RBAC is not the controller's.
    assert code == text_code == 0, err
    [report] = json.loads(out)["hpas"]
    assert report["ok"]
    pods, service, external = report["metrics"]
    forbidden = (
        f'pods.{CUSTOM} "*" is forbidden: User "jane" cannot get resource "pods/queue_length" '
        f'in API group "{CUSTOM}" in the namespace "shop"'
    )
    assert pods["aggregator"]["status"] == 403
    assert pods["aggregator"]["error"] == forbidden
    assert status == 403
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": forbidden,
        "reason": "Forbidden",
        "details": {"name": "*", "group": CUSTOM, "kind": "pods"},
        "code": 403,
    }
    assert pods["calculation"]["replicas"] == 6
    [problem] = pods["diagnosis"]
    assert problem["problem"] == f"kube-apiserver refuses the request (403): {forbidden}"
    assert problem["fix"] == RBAC_FIX
    for allowed in (service, external):
        assert allowed["aggregator"]["status"] == 200, allowed["aggregator"]
        assert allowed["diagnosis"] == []
    # The review the aggregator asked for: jane's identity and the request's attributes.
    reviews = [
        r.body["spec"]
        for r in kube.requests
        if r.path.endswith("/subjectaccessreviews")
        and r.body["spec"].get("user") == "jane"
        and "resourceAttributes" in r.body["spec"]
    ]
    assert {
        "user": "jane",
        "groups": ["system:authenticated"],
        "resourceAttributes": {
            "namespace": NS,
            "verb": "get",
            "group": CUSTOM,
            "version": "v1beta2",
            "resource": "pods",
            "subresource": "queue_length",
            "name": "*",
        },
    } in reviews
    assert f"    answer       403 {forbidden}" in text
    assert f"  problem: kube-apiserver refuses the request (403): {forbidden}" in text
    assert f"  fix:     {RBAC_FIX}" in text


async def test_selector_matching_no_pods(cluster: Cluster) -> None:
    code, report = await explain_json(cluster, "ghost")
    assert code == 1 and not report["ok"]
    assert report["scaleTarget"]["selector"] == "app=ghost"
    assert report["pods"] == {"count": 0, "runningAndReady": 0, "names": []}
    [metric] = report["metrics"]
    assert metric["calculation"] is None and metric["error"]
    selector = next(d for d in metric["diagnosis"] if "matches no pods" in d["problem"])
    assert selector == {
        "problem": "the scale target's selector app=ghost matches no pods in shop",
        "fix": "compare the target's spec.selector with its pods' labels "
        "(kubectl get pods -n shop -l 'app=ghost')",
    }
    assert report["desired"]["fromMetrics"] is None and report["desired"]["replicas"] == 3


def plain_metric_replicas(
    current: int, target: float, values: dict[str, float], pods: list[str]
) -> int:
    """calcPlainMetricReplicas, written out from replica_calculator.go: milli-units, the
    average by integer division; pods missing a metric count as 0 on a scale-up and as the
    target on a scale-down; no change within the tolerance or against the first direction."""
    target_milli = round(target * 1000)
    got = {pod: round(value * 1000) for pod, value in values.items()}
    ratio = (sum(got.values()) // len(got)) / target_milli
    missing = [pod for pod in pods if pod not in got]
    if not missing:
        return controller_formula(current, ratio)
    filled = {**got, **dict.fromkeys(missing, target_milli if ratio < 1.0 else 0)}
    new_ratio = (sum(filled.values()) // len(filled)) / target_milli
    if abs(1.0 - new_ratio) <= TOLERANCE or (ratio < 1.0 < new_ratio) or (new_ratio < 1.0 < ratio):
        return current
    replicas = math.ceil(new_ratio * len(filled))
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return current
    return replicas


@pytest.mark.parametrize(
    ("name", "target", "fill", "replicas"),
    [
        # 40 / 10 = 4: api-2 counts as 0, (30 + 50 + 0) / 3 / 10 = 2.67 -> ceil(8.0) = 8.
        ("api-up", 10, "scale-up: pods missing a metric count as 0", 8),
        # 40 / 80 = 0.5: api-2 counts as 80, (30 + 50 + 80) / 3 / 80 = 0.67 -> ceil(2.0) = 2.
        ("api-down", 80, "scale-down: pods missing a metric count as the target 80", 2),
    ],
)
async def test_pods_without_a_sample_are_filled_in(
    cluster: Cluster, name: str, target: int, fill: str, replicas: int
) -> None:
    code, report = await explain_json(cluster, name)
    assert code == 0 and report["ok"], report
    pods = ["api-0", "api-1", "api-2"]
    assert report["pods"]["names"] == pods
    [metric] = report["metrics"]
    assert metric["values"] == {"api-0": "30", "api-1": "50"}
    calculation = metric["calculation"]
    expected = plain_metric_replicas(3, target, API_PODS, pods)
    assert calculation["replicas"] == expected == replicas
    assert calculation["ratio"] == pytest.approx(40 / target)
    assert "pods: 2 ready with a metric; 1 missing a metric: api-2" in calculation["steps"]
    assert fill in calculation["steps"]
    filled = 0 if target < 40 else target
    assert calculation["ratioAfterFillIn"] == pytest.approx(
        ((30_000 + 50_000 + filled * 1000) // 3) / (target * 1000), abs=1e-4
    )
    missing = next(d for d in metric["diagnosis"] if "no sample" in d["problem"])
    assert missing["problem"] == "Prometheus returned no sample for 1 of 3 pods: api-2"
    promql = metric["rules"]["queries"][-1]["promql"]
    assert "api-0|api-1|api-2" in promql
    assert missing["fix"] == (
        f"run the PromQL in Prometheus ({promql}): the pods' series must exist and carry the "
        "pod's name in the mapped label"
    )


async def test_resource_cpu_utilization_from_resource_rules(cluster: Cluster) -> None:
    code, report = await explain_json(cluster, "cpu")
    assert code == 0 and report["ok"], report
    [metric] = report["metrics"]
    assert metric["request"]["url"] == (
        "/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods?labelSelector=app%3Dweb"
    )
    assert metric["rules"]["rule"] == "resourceRules"
    assert metric["values"] == {pod: f"{round(c * 1000)}m" for pod, c in CPU_CORES.items()}
    # GetResourceUtilizationRatio: the usage summed over the requests summed, in whole percent.
    usage = sum(round(cores * 1000) for cores in CPU_CORES.values())
    utilization = usage * 100 // (CPU_REQUEST_MILLI * len(CPU_CORES))
    ratio = utilization / CPU_UTILIZATION
    calculation = metric["calculation"]
    assert calculation["utilization"] == utilization == 120
    assert calculation["ratio"] == pytest.approx(ratio)
    assert calculation["replicas"] == controller_formula(3, ratio) == 8
    assert metric["diagnosis"] == []
    assert metric["aggregator"]["status"] == 200, metric["aggregator"]
    assert metric["aggregator"]["values"] == metric["values"]
    desired = report["desired"]
    assert (desired["fromMetrics"], desired["replicas"], desired["reason"]) == (
        8,
        6,
        "ScaleUpLimit",
    )


async def test_rules_on_a_named_backend_are_asked_there(cluster: Cluster, tmp_path: Path) -> None:
    """prometheusServers: the pods metric's rule and resourceRules name a backend (a
    recording proxy in front of the same Prometheus, sending its tenant header); their
    series and queries go there, the other rules' to --prometheus-url."""
    config = tmp_path / "config.yaml"
    text = CONFIG.replace(
        "rules:\n- seriesQuery: 'queue_length",
        "prometheusServers:\n- {name: team, url: PROXY, headers: {X-Scope-OrgID: team-a}}\n"
        "rules:\n- prometheusServer: team\n  seriesQuery: 'queue_length",
        1,
    ).replace("resourceRules:\n", "resourceRules:\n  prometheusServer: team\n", 1)
    async with running_recording_proxy(cluster.prometheus.url) as proxy:
        config.write_text(text.replace("PROXY", proxy.url))
        argv = cluster.argv("web", "-o", "json")
        argv[argv.index("--config") + 1] = str(config)
        code, out, err = await run(*argv)
        assert code == 0, err or out
        [report] = json.loads(out)["hpas"]
        pods = report["metrics"][0]
        assert pods["values"] == {"web-0": "30", "web-1": "50", "web-2": "70"}
        assert pods["rules"]["prometheusServer"] == "team"
        assert [q.get("prometheusServer") for q in pods["rules"]["queries"]] == ["team"]
        tenants = {
            (r.path, *(v for k, v in r.headers.items() if k.lower() == "x-scope-orgid"))
            for r in proxy.requests
        }
        assert ("/api/v1/series", "team-a") in tenants, tenants
        assert ("/api/v1/query", "team-a") in tenants, tenants
        queries = [v for r in proxy.requests for k, v in r.query if k == "query"]
        assert queries and all("queue_length" in q for q in queries), queries
