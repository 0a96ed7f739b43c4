"""A huge Prometheus answer: how long it stalls the adapter's event loop, and its memory.

Run from a repository root: ``python <this repo>/benchmarks/bench_large_answer.py [--size
25000000] [--repeat 3]``. The adapter is started as ``python -m adapter`` in the current
directory, so running this from another checkout measures that checkout's adapter (the
harness comes from this one). A real Prometheus scrapes the demo exporter; the fault proxy
(harness/fault_proxy.py) stands in front of it and answers the adapter's instant queries with
a valid vector of ``--size`` bytes (chunked, as Prometheus sends large answers; ``--shape``:
samples with all of a container series' labels, or only namespace and pod), while a
separate process asks the adapter's ``/healthz`` again and again over one keep-alive
connection. Reported per answer: the request's status and time, the longest ``/healthz``
round trip while it was read, the adapter's own event-loop lag probes over 50 ms
(``prometheus_adapter_event_loop_lag_seconds``), and the adapter's RSS before, at its peak
(VmHWM), and one and five seconds after. Numbers only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from harness.adapter import AdapterProcess  # noqa: E402
from harness.exporter import demo_dataset, running_exporter  # noqa: E402
from harness.fault_proxy import HUGE_SHAPES, Fault, FaultProxy  # noqa: E402
from harness.prometheus import PrometheusProcess  # noqa: E402

__all__ = ["main"]

_METRIC = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/demo/pods/*/memory_usage_bytes"
_LAG = "prometheus_adapter_event_loop_lag_seconds"


def _status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


async def _lag_buckets(session: aiohttp.ClientSession, adapter: AdapterProcess) -> dict[str, float]:
    """The lag histogram's cumulative buckets by `le`, and its count under "count"."""
    async with session.get(f"{adapter.url}/metrics", ssl=adapter.ssl_context()) as response:
        text = await response.text()
    buckets: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == f"{_LAG}_bucket":
                buckets[sample.labels["le"]] = sample.value
            elif sample.name == f"{_LAG}_count":
                buckets["count"] = sample.value
    return buckets


def _lag_summary(before: dict[str, float], after: dict[str, float]) -> tuple[int, str]:
    """Probes over 50 ms late, and the smallest bucket bound every probe fell under."""
    count = after["count"] - before["count"]
    over = round(count - (after["0.05"] - before["0.05"]))
    bounds = sorted((float(le), le) for le in after if le not in ("count", "+Inf"))
    worst = next(
        (le for _, le in bounds if after[le] - before[le] == count),
        "+Inf",
    )
    return over, f"<= {worst} s"


async def _probe(url: str, cafile: str) -> None:
    """The /healthz prober (its own process): prints its longest round trip when stdin ends."""
    tls = ssl.create_default_context(cafile=cafile)
    latencies: list[float] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(sys.stdin.fileno(), stop.set)  # any input or EOF: stop
    async with aiohttp.ClientSession() as session:
        print("ready", flush=True)
        while not stop.is_set():
            started = time.perf_counter()
            async with session.get(f"{url}/healthz", ssl=tls) as response:
                await response.read()
            latencies.append(time.perf_counter() - started)
    latencies.sort()
    print(
        json.dumps(
            {
                "count": len(latencies),
                "max_ms": latencies[-1] * 1000,
                "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
            }
        ),
        flush=True,
    )


async def _measure(size: int, shape: str, repeat: int, extra_args: Sequence[str]) -> None:
    dataset = demo_dataset()
    async with (
        running_exporter(dataset) as exporter,
        PrometheusProcess([exporter.target]) as prometheus,
    ):
        await prometheus.wait_for_series("memory_usage_bytes", count=len(dataset.pods))
        proxy = FaultProxy(prometheus.url)
        proxy.huge = size
        proxy.huge_shape = shape
        proxy.huge_namespace = "demo"
        proxy.huge_pods = tuple(pod.name for pod in dataset.pods)
        proxy.huge_body()  # made now, not while the adapter is measured
        await proxy.start()
        adapter = AdapterProcess(REPO / "config" / "demo.yaml", proxy.url, extra_args)
        try:
            await adapter.start()
            assert adapter.process is not None
            pid = adapter.process.pid
            async with aiohttp.ClientSession() as session:
                tls = adapter.ssl_context()
                while True:  # until discovery has the metric
                    async with session.get(adapter.url + _METRIC, ssl=tls) as response:
                        if response.status == 200:
                            break
                    await asyncio.sleep(0.1)
                print(
                    f"adapter {Path.cwd()}: idle RSS {_status_mb(pid, 'VmRSS'):.1f} MB; "
                    f"answers of {size / 1e6:.1f} MB, samples shaped {shape!r}"
                )
                print(
                    "| answer MB | status | request s | /healthz max ms | /healthz p99 ms "
                    "| lag probes > 50 ms | all lag probes | RSS before MB | peak MB "
                    "| 1 s after MB | 5 s after MB |"
                )
                print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
                for _ in range(repeat):
                    await _one_answer(session, adapter, proxy, pid, size)
        finally:
            await adapter.close()
            await proxy.stop()


async def _one_answer(
    session: aiohttp.ClientSession,
    adapter: AdapterProcess,
    proxy: FaultProxy,
    pid: int,
    size: int,
) -> None:
    tls = adapter.ssl_context()
    rss_before = _status_mb(pid, "VmRSS")
    lag_before = await _lag_buckets(session, adapter)
    prober = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--probe",
        adapter.url,
        "--cafile",
        str(adapter.ca_file),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert prober.stdout is not None and prober.stdin is not None
    assert (await prober.stdout.readline()).strip() == b"ready"
    proxy.fault = Fault.HUGE
    started = time.perf_counter()
    async with session.get(adapter.url + _METRIC, ssl=tls) as response:
        await response.read()
        status = response.status
    seconds = time.perf_counter() - started
    proxy.fault = Fault.NONE
    prober.stdin.close()
    probe = json.loads((await prober.stdout.readline()).decode())
    await prober.wait()
    lag_after = await _lag_buckets(session, adapter)
    over, worst = _lag_summary(lag_before, lag_after)
    peak = _status_mb(pid, "VmHWM")
    await asyncio.sleep(1)
    rss_after = _status_mb(pid, "VmRSS")
    await asyncio.sleep(4)
    rss_later = _status_mb(pid, "VmRSS")
    print(
        f"| {size / 1e6:.1f} | {status} | {seconds:.2f} | {probe['max_ms']:.1f} "
        f"| {probe['p99_ms']:.1f} | {over} | {worst} | {rss_before:.1f} | {peak:.1f} "
        f"| {rss_after:.1f} | {rss_later:.1f} |",
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=25_000_000, help="bytes of the answer")
    parser.add_argument("--shape", default="cadvisor", choices=sorted(HUGE_SHAPES))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--adapter-arg", action="append", default=[], help="repeatable")
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    parser.add_argument("--cafile", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        asyncio.run(_probe(args.probe, args.cafile))
        return 0
    asyncio.run(_measure(args.size, args.shape, args.repeat, args.adapter_arg))
    return 0


if __name__ == "__main__":
    sys.exit(main())
