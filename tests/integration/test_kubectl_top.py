"""`kubectl top` against the adapter's metrics.k8s.io, with a real Prometheus holding node and
container series, through a miniature aggregator (kubectl top node also reads the nodes from
the core API, which the fake kube-apiserver serves)."""

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from harness.adapter import AdapterProcess
from harness.aggregator import running_aggregator
from harness.exporter import demo_dataset, running_exporter
from harness.fake_kube_apiserver import running_fake_kube_apiserver
from harness.kubectl import kubectl, write_kubeconfig
from harness.prometheus import PrometheusProcess
from tests.integration.conftest import DEMO_CONFIG, wait_for_rates

pytestmark = pytest.mark.asyncio(loop_scope="module")

# The demo exporter: containers use 0.125/0.25/0.5 cores and 64/96/128 MiB; node-a uses 1.5 of 4
# CPUs and 3 GiB of 8, node-b 0.5 of 2 CPUs and 1 GiB of 4.
PODS = {"web-0": (125, "64Mi"), "web-1": (250, "96Mi"), "web-2": (500, "128Mi")}
NODES = {"node-a": (1500, "3072Mi"), "node-b": (500, "1024Mi")}  # kubectl prints MiB


@dataclass
class TopStack:
    direct: Path  # kubeconfig for the adapter itself
    cluster: Path  # kubeconfig for the aggregator (core API + metrics.k8s.io)
    url: str  # the adapter's
    ca_file: Path


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def top(tmp_path_factory: Any) -> AsyncIterator[TopStack]:
    workdir = tmp_path_factory.mktemp("top")
    async with running_exporter(demo_dataset()) as exporter, running_fake_kube_apiserver() as kube:
        for name, cpus, memory in (("node-a", "4", "8Gi"), ("node-b", "2", "4Gi")):
            kube.add_object("v1/nodes", {"metadata": {"name": name}, "status": {"allocatable": {"cpu": cpus, "memory": memory}, "capacity": {"cpu": cpus, "memory": memory}}})  # fmt: skip
        prometheus = PrometheusProcess([exporter.target])
        adapter = AdapterProcess(DEMO_CONFIG, prometheus.url)
        try:
            await prometheus.start()
            await wait_for_rates(prometheus, 3)
            await prometheus.wait_for_query(
                "irate(container_cpu_usage_seconds_total[1m])", lambda r: len(r) >= 3
            )
            await adapter.start()
            async with running_aggregator(
                kube, adapter.url, adapter.ssl_context(), ["metrics.k8s.io"]
            ) as aggregator:
                yield TopStack(
                    direct=write_kubeconfig(workdir / "direct", adapter.url, ca_file=str(adapter.ca_file), token="x"),
                    cluster=aggregator.kubeconfig(workdir / "cluster"),
                    url=adapter.url,
                    ca_file=adapter.ca_file,
                )  # fmt: skip
        finally:
            await adapter.close()
            await prometheus.close()


def millicores(text: str) -> int:
    return int(text.removesuffix("m")) if text.endswith("m") else int(text) * 1000


def table(output: str) -> list[list[str]]:
    return [line.split() for line in output.strip().splitlines()[1:]]


async def test_kubectl_top_pod(top: TopStack) -> None:
    code, out, err = await kubectl("top", "pod", "-A", kubeconfig=top.cluster)
    assert code == 0, err
    rows = {row[1]: row for row in table(out)}
    assert set(rows) == set(PODS)
    for pod, (cpu, memory) in PODS.items():
        namespace, _, cpu_text, memory_text = rows[pod]
        assert namespace == "demo"
        # irate over float samples may land a hair under the rate, truncated to the milli.
        assert abs(millicores(cpu_text) - cpu) <= 1
        assert memory_text == memory


async def test_kubectl_top_node(top: TopStack) -> None:
    code, out, err = await kubectl("top", "node", kubeconfig=top.cluster)
    assert code == 0, err
    rows = {row[0]: row for row in table(out)}
    assert set(rows) == set(NODES)
    for node, (cpu, memory) in NODES.items():
        _, cpu_text, _cpu_percent, memory_text, _memory_percent = rows[node]
        assert abs(millicores(cpu_text) - cpu) <= 1
        assert memory_text == memory
    assert rows["node-a"][2] == "37%" and rows["node-a"][4] == "37%"


async def test_metrics_lists_have_the_go_adapter_shape(top: TopStack) -> None:
    code, out, err = await kubectl(
        "get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/demo/pods", kubeconfig=top.direct
    )
    assert code == 0, err
    body = json.loads(out)
    assert (body["kind"], body["apiVersion"], body["metadata"]) == (
        "PodMetricsList",
        "metrics.k8s.io/v1beta1",
        {},
    )
    first = body["items"][0]
    assert set(first) == {"metadata", "timestamp", "window", "containers"}
    assert first["window"] == "1m0s"
    assert first["metadata"]["name"] == "web-0" and first["metadata"]["namespace"] == "demo"
    assert first["containers"][0]["name"] == "web"
    assert first["containers"][0]["usage"]["memory"] == "64Mi"
    code, out, err = await kubectl(
        "get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes/node-b", kubeconfig=top.direct
    )
    assert code == 0, err
    node = json.loads(out)
    assert (node["kind"], node["usage"]["cpu"], node["usage"]["memory"]) == (
        "NodeMetrics",
        "500m",
        "1Gi",
    )
    code, _, err = await kubectl(
        "get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes/nope", kubeconfig=top.direct
    )
    assert code == 1 and "NotFound" in err


async def test_kubectl_get_pod_metrics_prints_the_go_adapters_columns(top: TopStack) -> None:
    """kubectl asks for a meta.k8s.io Table; the columns are metrics-server's."""
    code, top_out, err = await kubectl("top", "pod", "-n", "demo", kubeconfig=top.cluster)
    assert code == 0, err
    top_rows = {row[0]: row[1:] for row in table(top_out)}
    code, out, err = await kubectl(
        "get", "pods.metrics.k8s.io", "-n", "demo", kubeconfig=top.cluster
    )
    assert code == 0, err
    header, *_ = out.splitlines()
    assert header.split() == ["NAME", "CPU", "MEMORY", "WINDOW"]
    rows = {row[0]: row[1:] for row in table(out)}
    assert set(rows) == set(PODS)
    for pod, (cpu, memory, window) in rows.items():
        assert abs(millicores(cpu) - millicores(top_rows[pod][0])) <= 1
        assert (memory, window) == (top_rows[pod][1], "1m0s")
    code, out, err = await kubectl("get", "pods.metrics.k8s.io", "-A", kubeconfig=top.cluster)
    assert code == 0, err
    assert out.splitlines()[0].split() == ["NAMESPACE", "NAME", "CPU", "MEMORY", "WINDOW"]


async def test_kubectl_get_node_metrics_prints_the_go_adapters_columns(top: TopStack) -> None:
    code, out, err = await kubectl("get", "nodes.metrics.k8s.io", kubeconfig=top.cluster)
    assert code == 0, err
    assert out.splitlines()[0].split() == ["NAME", "CPU", "MEMORY", "WINDOW"]
    rows = {row[0]: row[1:] for row in table(out)}
    assert set(rows) == set(NODES)
    # The cells are canonical quantities, where kubectl top prints MiB.
    for node, (cpu, memory) in {"node-a": (1500, "3Gi"), "node-b": (500, "1Gi")}.items():
        assert abs(millicores(rows[node][0]) - cpu) <= 1
        assert rows[node][1:] == [memory, "1m0s"]
    code, out, err = await kubectl(
        "get", "nodes.metrics.k8s.io", "node-b", "-o", "yaml", kubeconfig=top.cluster
    )
    assert code == 0, err
    assert "kind: NodeMetrics" in out and "memory: 1Gi" in out


async def curl(top: TopStack, path: str, *args: str) -> bytes:
    process = await asyncio.create_subprocess_exec(
        "curl", "-s", "--cacert", str(top.ca_file), "-H", "Authorization: Bearer x", *args,
        top.url + path, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await process.communicate()
    assert process.returncode == 0
    return out


async def test_curl_gets_what_it_would_get_from_the_go_adapter(top: TopStack) -> None:
    path = "/apis/metrics.k8s.io/v1beta1/nodes/node-b"
    # curl's User-Agent asks for indented JSON, which k8s.io/apiserver writes without a newline.
    pretty = await curl(top, path)
    assert pretty.startswith(b'{\n  "kind": "NodeMetrics",\n') and pretty.endswith(b"\n}")
    compact = await curl(top, path, "-A", "kubectl/v1.30.0")
    assert compact.startswith(b'{"kind":"NodeMetrics",') and compact.endswith(b"}\n")
    assert json.loads(compact) == json.loads(pretty)
    assert (await curl(top, path + "?pretty=false")).endswith(b"}\n")
    yaml = await curl(top, path, "-H", "Accept: application/yaml")
    assert yaml.startswith(b"apiVersion: metrics.k8s.io/v1beta1\nkind: NodeMetrics\nmetadata:\n")
    refused = json.loads(await curl(top, path, "-H", "Accept: text/html"))
    assert (refused["code"], refused["reason"]) == (406, "NotAcceptable")
