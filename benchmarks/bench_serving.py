"""Serving benchmark: requests/s, p50 and p99 against a real Prometheus holding ~1,000 pods.

Run from the repository root: `python benchmarks/bench_serving.py [--seconds 10]
[--concurrency 8]`. It starts the synthetic exporter (1,000 pods in 10 namespaces), a real
Prometheus and the adapter (`--no-cluster`, config/demo.yaml) as its own process, drives each
request kind with a bounded loopback load, and prints one table with the adapter's CPU time
per request and its RSS. Numbers only; nothing is asserted. Everything it starts, it stops.
"""

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.adapter import AdapterProcess
from harness.exporter import running_exporter, synthetic_dataset
from harness.prometheus import PrometheusProcess

CONFIG = Path(__file__).resolve().parents[1] / "config" / "demo.yaml"
CUSTOM = "/apis/custom.metrics.k8s.io/v1beta2"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


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


async def drive(
    name: str,
    adapter: AdapterProcess,
    pid: int,
    path_for: Callable[[int], str],
    seconds: float,
    concurrency: int,
) -> Result:
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency, ssl=adapter.ssl_context())
    async with aiohttp.ClientSession(connector=connector) as session:

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


async def main(seconds: float, concurrency: int, pods: int, namespaces: int) -> None:
    dataset = synthetic_dataset(pods, namespaces)
    async with running_exporter(dataset) as exporter:
        prometheus = PrometheusProcess([exporter.target])
        adapter = AdapterProcess(CONFIG, prometheus.url, relist_interval="1m")
        try:
            await prometheus.start()
            await prometheus.wait_for_series("http_requests_total", count=pods, timeout=60)
            await prometheus.wait_for_query(
                "count(irate(http_requests_total[1m]))",
                lambda r: bool(r) and float(r[0]["value"][1]) >= pods,
                timeout=60,
            )
            started = time.monotonic()
            await adapter.start()
            startup = time.monotonic() - started
            assert adapter.process is not None
            pid = adapter.process.pid
            idle_rss = process_rss_mb(pid)
            per_ns = pods // namespaces
            metric = "http_requests_per_second"
            external = "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/queue_depth"
            cases: list[tuple[str, Callable[[int], str]]] = [
                (
                    "named pod metric",
                    lambda i: (
                        f"{CUSTOM}/namespaces/ns-{i % namespaces}/pods/pod-{i % pods}/{metric}"
                    ),
                ),
                (
                    f"pods/* ({per_ns} pods in a namespace)",
                    lambda i: f"{CUSTOM}/namespaces/ns-{i % namespaces}/pods/*/{metric}",
                ),
                (
                    "external metric",
                    lambda i: f"{external}?labelSelector=name%3Dqueue-{i % namespaces}",
                ),
            ]
            results = [
                await drive(name, adapter, pid, path_for, seconds, concurrency)
                for name, path_for in cases
            ]
            loaded_rss = process_rss_mb(pid)
        finally:
            await adapter.close()
            await prometheus.close()
    print(
        f"\nmachine: {os.cpu_count()} cores; {pods} pods in {namespaces} namespaces; "
        f"concurrency {concurrency}; {seconds:g}s per case; "
        "client, adapter and Prometheus share the machine"
    )
    columns = ("req/s", "p50 ms", "p99 ms", "adapter CPU", "errors")
    print(f"{'request':<38} {columns[0]:>9} {columns[1]:>9} {columns[2]:>9} {columns[3]:>12} "
          f"{columns[4]:>7}")  # fmt: skip
    print(f"{'':<38} {'':>9} {'':>9} {'':>9} {'ms/request':>12}")
    for result in results:
        print(result.row())
    print(
        f"\nadapter start-up to ready: {startup:.2f}s; "
        f"RSS idle {idle_rss:.1f} MB, after load {loaded_rss:.1f} MB"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--namespaces", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.concurrency, args.pods, args.namespaces))
