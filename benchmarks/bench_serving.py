"""Serving benchmark: requests/s, p50 and p99 against a real Prometheus holding ~1,000 pods.

Run from the repository root: `python benchmarks/bench_serving.py [--seconds 10]
[--concurrency 8]`. It starts the synthetic exporter (1,000 pods in 10 namespaces) and a real
Prometheus, then runs the adapter (config/demo.yaml) twice as its own process: with
`--no-cluster`, and in cluster mode against the fake kube-apiserver with authentication and
authorization on. Each request kind gets a bounded loopback load; the tables show requests/s,
p50/p99, the adapter's CPU time per request, start-up time and RSS. Numbers only; nothing is
asserted. Everything it starts, it stops.
"""

import argparse
import asyncio
import os
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.adapter import AdapterProcess
from harness.exporter import Dataset, running_exporter, synthetic_dataset
from harness.fake_kube_apiserver import FakeKubeAPIServer, running_fake_kube_apiserver
from harness.pki import CertificateAuthority
from harness.prometheus import PrometheusProcess

CONFIG = Path(__file__).resolve().parents[1] / "config" / "demo.yaml"
CUSTOM = "/apis/custom.metrics.k8s.io/v1beta2"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
BENCH_USER = "system:serviceaccount:kube-system:horizontal-pod-autoscaler"


@dataclass
class Result:
    name: str
    requests: int
    errors: int
    seconds: float
    latencies: list[float]
    cpu_seconds: float

    def row(self) -> str:
        lat = sorted(self.latencies) or [0.0]
        p50 = statistics.median(lat) * 1000
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
        rate = self.requests / self.seconds
        cpu_ms = self.cpu_seconds / max(self.requests, 1) * 1000
        return f"{self.name:<38} {rate:9.0f} {p50:9.2f} {p99:9.2f} {cpu_ms:12.3f} {self.errors:7d}"


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Client:
    """How the load generator talks to the adapter: TLS context and identity headers."""

    ssl: ssl.SSLContext
    headers: dict[str, str]


async def drive(
    name: str,
    adapter: AdapterProcess,
    client: Client,
    path_for: Callable[[int], str],
    seconds: float,
    concurrency: int,
) -> Result:
    assert adapter.process is not None
    pid = adapter.process.pid
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency, ssl=client.ssl)
    async with aiohttp.ClientSession(connector=connector, headers=client.headers) as session:

        async def worker(offset: int) -> None:
            nonlocal errors
            i = offset
            while time.monotonic() < deadline:
                started = time.perf_counter()
                async with session.get(adapter.url + path_for(i)) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - started)
                i += concurrency

        cpu_before = process_cpu(pid)
        began = time.monotonic()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.monotonic() - began
        cpu = process_cpu(pid) - cpu_before
    return Result(name, len(latencies), errors, elapsed, latencies, cpu)


async def run_cases(
    adapter: AdapterProcess,
    client: Client,
    pods: int,
    namespaces: int,
    seconds: float,
    concurrency: int,
) -> list[Result]:
    per_ns = pods // namespaces
    metric = "http_requests_per_second"
    external = "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/queue_depth"
    cases: list[tuple[str, Callable[[int], str]]] = [
        (
            "named pod metric",
            lambda i: f"{CUSTOM}/namespaces/ns-{i % namespaces}/pods/pod-{i % pods}/{metric}",
        ),
        (
            f"pods/* ({per_ns} pods in a namespace)",
            lambda i: f"{CUSTOM}/namespaces/ns-{i % namespaces}/pods/*/{metric}",
        ),
        ("external metric", lambda i: f"{external}?labelSelector=name%3Dqueue-{i % namespaces}"),
    ]
    return [
        await drive(name, adapter, client, path_for, seconds, concurrency)
        for name, path_for in cases
    ]


async def run_adapter(
    adapter: AdapterProcess,
    client_for: Callable[[AdapterProcess], Client],
    args: argparse.Namespace,
) -> tuple[list[Result], float, float, float]:
    started = time.monotonic()
    await adapter.start()
    startup = time.monotonic() - started
    client = client_for(adapter)  # after start: the adapter generates its certificate
    assert adapter.process is not None
    idle_rss = process_rss_mb(adapter.process.pid)
    results = await run_cases(
        adapter, client, args.pods, args.namespaces, args.seconds, args.concurrency
    )
    loaded_rss = process_rss_mb(adapter.process.pid)
    await adapter.close()
    return results, startup, idle_rss, loaded_rss


async def cluster_run(
    prometheus: PrometheusProcess, dataset: Dataset, args: argparse.Namespace, workdir: Path
) -> tuple[list[Result], float, float, float]:
    """Cluster mode against the fake kube-apiserver: requests arrive as from the aggregator,
    with the front-proxy certificate and a user that is not in system:masters, so every
    request is authenticated and authorized (through the SubjectAccessReview cache)."""
    front_proxy = CertificateAuthority("front-proxy-ca")
    async with running_fake_kube_apiserver() as kube:
        for namespace in sorted({p.namespace for p in dataset.pods}):
            kube.add_object("v1/namespaces", {"metadata": {"name": namespace}})
        for pod in dataset.pods:
            meta = {"name": pod.name, "namespace": pod.namespace, "labels": dict(pod.labels)}
            kube.add_object("v1/pods", {"metadata": meta})
        kube.set_authentication_configmap(
            requestheader_ca=front_proxy.cert_pem.decode(), allowed_names=["front-proxy-client"]
        )
        kube.allow(user=BENCH_USER, group_name=["custom.metrics.k8s.io", "external.metrics.k8s.io"])
        kubeconfig = kube.kubeconfig(workdir / "kubeconfig")
        flags = [
            f"--lister-kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
        ]
        adapter = AdapterProcess(
            CONFIG, prometheus.url, flags, relist_interval="1m", no_cluster=False
        )
        cert, key = front_proxy.issue_client("front-proxy-client").write(workdir, "front-proxy")
        headers = {"X-Remote-User": BENCH_USER, "X-Remote-Group": "system:serviceaccounts"}

        def aggregator(adapter: AdapterProcess) -> Client:
            context = adapter.ssl_context()
            context.load_cert_chain(cert, key)
            return Client(context, headers)

        result = await run_adapter(adapter, aggregator, args)
        sars = kube.count("POST", "/apis/authorization.k8s.io")
        print(f"cluster mode: {sars} SubjectAccessReviews and {list_calls(kube)} pod LIST calls "
              "for the whole run")  # fmt: skip
        return result


def list_calls(kube: FakeKubeAPIServer) -> int:
    return sum(
        1
        for r in kube.requests
        if r.method == "GET"
        and r.path.endswith("/pods")
        and r.query.get("watch") not in ("1", "true")
    )


def print_table(
    title: str, results: list[Result], startup: float, idle: float, loaded: float
) -> None:
    print(f"\n{title}")
    columns = ("req/s", "p50 ms", "p99 ms", "adapter CPU", "errors")
    print(f"{'request':<38} {columns[0]:>9} {columns[1]:>9} {columns[2]:>9} {columns[3]:>12} "
          f"{columns[4]:>7}")  # fmt: skip
    print(f"{'':<38} {'':>9} {'':>9} {'':>9} {'ms/request':>12}")
    for result in results:
        print(result.row())
    print(
        f"adapter start-up to ready: {startup:.2f}s; "
        f"RSS idle {idle:.1f} MB, after load {loaded:.1f} MB"
    )


async def main(args: argparse.Namespace) -> None:
    dataset = synthetic_dataset(args.pods, args.namespaces)
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        async with running_exporter(dataset) as exporter:
            prometheus = PrometheusProcess([exporter.target])
            try:
                await prometheus.start()
                await prometheus.wait_for_series("http_requests_total", count=args.pods, timeout=60)
                await prometheus.wait_for_query(
                    "count(irate(http_requests_total[1m]))",
                    lambda r: bool(r) and float(r[0]["value"][1]) >= args.pods,
                    timeout=60,
                )
                no_cluster = AdapterProcess(CONFIG, prometheus.url, relist_interval="1m")
                plain = await run_adapter(
                    no_cluster, lambda adapter: Client(adapter.ssl_context(), {}), args
                )
                cluster = await cluster_run(prometheus, dataset, args, Path(tmp))
            finally:
                await prometheus.close()
    print(
        f"\nmachine: {os.cpu_count()} cores; {args.pods} pods in {args.namespaces} namespaces; "
        f"concurrency {args.concurrency}; {args.seconds:g}s per case; "
        "client, adapter, Prometheus (and the fake kube-apiserver) share the machine"
    )
    print_table("--no-cluster (no authentication)", *plain)
    print_table("cluster mode: front-proxy certificate, authentication and SAR (cached)", *cluster)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--namespaces", type=int, default=10)
    asyncio.run(main(parser.parse_args()))
