"""A deterministic metrics exporter describing fake Kubernetes pods, containers, nodes, queues.

Every sample carries an explicit timestamp: the scrape time rounded down to ``resolution_ms``
(whole seconds by default). A counter with rate ``r`` is worth exactly ``r * (t - start)`` at
timestamp ``t`` (seconds): a linear function of its own timestamp, so Prometheus' ``rate()``
returns ``r`` up to floating-point rounding once the range is covered by samples (see
:meth:`Dataset.openmetrics_history` to backfill that history instead of waiting for it).

Where ``rate()`` is evaluated matters with whole-second timestamps: at a sample's time it is
exact, but at "now" the newest sample can be up to ~2 s old, more than rate()'s extrapolation
threshold (1.1 sample intervals), and the result is then low by up to ~2.5% for ``[1m]``.
``resolution_ms=1`` keeps sample times within one scrape interval of "now", and rate() at any
time exact (~1e-9). Gauges are constant.

``start`` defaults to the Unix epoch: values then depend on the timestamp only, so two
processes (an exporter and a backfill) agree on every sample, and ``rate()``'s extrapolation
is never cut short at the counter's zero crossing.

Run it as a process with ``python -m harness.exporter --port N [--pods 1000 --namespaces 10]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from aiohttp import web

__all__ = [
    "ContainerSpec",
    "CounterSpec",
    "Dataset",
    "Exporter",
    "GaugeSpec",
    "NodeSpec",
    "PodSpec",
    "Series",
    "dataset_from_args",
    "demo_dataset",
    "format_value",
    "main",
    "running_exporter",
    "synthetic_dataset",
]

_Kind = Literal["counter", "gauge"]

MiB = 1024 * 1024
GiB = 1024 * MiB

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_HELP = {
    "http_requests_total": "HTTP requests served by the pod.",
    "memory_usage_bytes": "Memory used by the pod, in bytes.",
    "queue_depth": "Messages waiting in the queue.",
    "queue_consumer_lag": "Messages the queue's consumers are behind.",
    "container_cpu_usage_seconds_total": "CPU time used by the container, in seconds.",
    "container_memory_working_set_bytes": "Working set of the container, in bytes.",
    "node_cpu_seconds_total": "Seconds the node's CPUs spent in each mode.",
    "node_memory_MemTotal_bytes": "Memory of the node, in bytes.",
    "node_memory_MemAvailable_bytes": "Memory available on the node, in bytes.",
}


@dataclass(frozen=True)
class ContainerSpec:
    """A container of a pod: CPU use in cores (a counter's rate) and working set in bytes."""

    name: str
    cpu_cores: float = 0.1
    memory_bytes: float = 64 * MiB


@dataclass(frozen=True)
class PodSpec:
    """A pod serving ``request_rate`` requests per second.

    ``labels`` are added to its ``http_requests_total`` series (e.g. ``service``,
    ``container``); ``memory_bytes`` adds ``memory_usage_bytes{namespace,pod}``;
    ``containers`` add cAdvisor-style container series.
    """

    namespace: str
    name: str
    request_rate: float
    labels: Mapping[str, str] = field(default_factory=dict)
    memory_bytes: float | None = None
    containers: tuple[ContainerSpec, ...] = ()


@dataclass(frozen=True)
class GaugeSpec:
    """Any gauge with an exact value (NaN and infinities allowed)."""

    name: str
    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class CounterSpec:
    """Any counter growing at ``rate`` per second."""

    name: str
    labels: Mapping[str, str]
    rate: float


@dataclass(frozen=True)
class NodeSpec:
    """A node, node-exporter style: ``cpus`` CPUs of which ``cpu_usage_cores`` are busy."""

    name: str
    cpus: int = 4
    cpu_usage_cores: float = 1.0
    memory_total_bytes: float = 8 * GiB
    memory_available_bytes: float = 6 * GiB


@dataclass(frozen=True)
class Series:
    """One exposed series: a counter's per-second rate, or a gauge's value."""

    name: str
    labels: tuple[tuple[str, str], ...]
    kind: _Kind
    value: float

    def value_at(self, timestamp: float, start: float = 0.0) -> float:
        """The sample at ``timestamp`` (seconds) for counters that were 0 at ``start``."""
        if self.kind == "gauge":
            return self.value
        return self.value * (timestamp - start)

    def selector(self) -> str:
        """The series as a PromQL selector, ``name{label="value",...}``."""
        return self.name + _render_labels(self.labels)


@dataclass(frozen=True)
class Dataset:
    """What the exporter exposes; ``start`` is when every counter was 0 (Unix seconds)."""

    pods: tuple[PodSpec, ...] = ()
    gauges: tuple[GaugeSpec, ...] = ()
    counters: tuple[CounterSpec, ...] = ()
    nodes: tuple[NodeSpec, ...] = ()
    start: float = 0.0

    def series(self) -> list[Series]:
        """Every series, grouped by metric name (the exposition format wants families whole)."""
        by_name: dict[str, list[Series]] = {}

        def add(name: str, labels: Mapping[str, str], kind: _Kind, value: float) -> None:
            by_name.setdefault(name, []).append(Series(name, tuple(labels.items()), kind, value))

        for pod in self.pods:
            pod_labels = {"namespace": pod.namespace, "pod": pod.name}
            add("http_requests_total", {**pod_labels, **pod.labels}, "counter", pod.request_rate)
            if pod.memory_bytes is not None:
                add("memory_usage_bytes", pod_labels, "gauge", pod.memory_bytes)
            for container in pod.containers:
                labels = {**pod_labels, "container": container.name}
                add("container_cpu_usage_seconds_total", labels, "counter", container.cpu_cores)
                add("container_memory_working_set_bytes", labels, "gauge", container.memory_bytes)
        for node in self.nodes:
            busy = node.cpu_usage_cores / node.cpus
            for cpu in range(node.cpus):
                for mode, share in (("user", busy), ("idle", 1.0 - busy)):
                    labels = {"node": node.name, "cpu": str(cpu), "mode": mode}
                    add("node_cpu_seconds_total", labels, "counter", share)
            add("node_memory_MemTotal_bytes", {"node": node.name}, "gauge", node.memory_total_bytes)
            add(
                "node_memory_MemAvailable_bytes",
                {"node": node.name},
                "gauge",
                node.memory_available_bytes,
            )
        for gauge in self.gauges:
            add(gauge.name, gauge.labels, "gauge", gauge.value)
        for counter in self.counters:
            add(counter.name, counter.labels, "counter", counter.rate)
        return [item for items in by_name.values() for item in items]

    def render(self, timestamp_ms: int) -> str:
        """The text exposition format (0.0.4) with every sample at ``timestamp_ms``."""
        return _Renderer(self).render(timestamp_ms)

    def openmetrics_history(
        self,
        first: int,
        last: int,
        step: int = 1,
        *,
        extra_labels: Mapping[str, str] | None = None,
        eof: bool = True,
    ) -> str:
        """OpenMetrics text with a sample of every series each ``step`` s in [first, last].

        This is the input of ``promtool tsdb create-blocks-from openmetrics``: the same
        values the exporter would have served, so Prometheus can start with history.
        ``extra_labels`` must be the target labels the scrape adds (``job``, ``instance``),
        or the history lands in other series than the scraped samples.
        Series come one after the other, each in time order, as promtool needs. Histories of
        several targets are concatenated with ``eof=False`` on all but the last.
        """
        if step <= 0 or last < first:
            raise ValueError(f"bad history range: first={first} last={last} step={step}")
        times = range(first, last + 1, step)
        extra = tuple((extra_labels or {}).items())
        lines: list[str] = []
        for item in self.series():
            head = item.name + _render_labels(item.labels + extra) + " "
            lines.extend(f"{head}{format_value(item.value_at(t, self.start))} {t}" for t in times)
        if eof:
            lines.append("# EOF")
        return "".join(line + "\n" for line in lines)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _render_labels(labels: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{name}="{_escape(value)}"' for name, value in labels)
    return "{" + inner + "}" if inner else ""


def format_value(value: float) -> str:
    """A sample value, exactly: Python's shortest round-trip repr, NaN, +Inf, -Inf."""
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


class _Renderer:
    """Pre-renders names, labels and metadata once; a scrape only formats values."""

    def __init__(self, dataset: Dataset) -> None:
        self.start = dataset.start
        self.parts: list[tuple[str, Series | None]] = []
        seen: set[str] = set()
        for item in dataset.series():
            if item.name not in seen:
                seen.add(item.name)
                help_text = _HELP.get(item.name, f"Harness series {item.name}.")
                self.parts.append((f"# HELP {item.name} {help_text}\n", None))
                self.parts.append((f"# TYPE {item.name} {item.kind}\n", None))
            self.parts.append((item.selector() + " ", item))

    def render(self, timestamp_ms: int) -> str:
        seconds = timestamp_ms / 1000
        suffix = f" {timestamp_ms}\n"
        out: list[str] = []
        for text, item in self.parts:
            out.append(text)
            if item is not None:
                out.append(format_value(item.value_at(seconds, self.start)))
                out.append(suffix)
        return "".join(out)


def demo_dataset() -> Dataset:
    """Namespace ``demo``: pods web-0, web-1, web-2 at 0.5, 1 and 2 req/s, two nodes, queues."""
    pods = tuple(
        PodSpec(
            namespace="demo",
            name=f"web-{index}",
            request_rate=rate,
            labels={"service": "web"},
            memory_bytes=float((100 + 50 * index) * MiB),
            containers=(
                ContainerSpec(
                    "web", cpu_cores=0.125 * 2**index, memory_bytes=(64 + 32 * index) * MiB
                ),
            ),
        )
        for index, rate in enumerate((0.5, 1.0, 2.0))
    )
    gauges = (
        GaugeSpec("queue_depth", {"topic": "orders", "name": "orders"}, 42.0),
        GaugeSpec("queue_depth", {"topic": "payments", "name": "payments"}, 7.5),
        GaugeSpec("queue_consumer_lag", {"name": "orders"}, 1250.0),
        GaugeSpec("queue_consumer_lag", {"name": "payments"}, 0.0),
    )
    nodes = (
        NodeSpec("node-a", cpus=4, cpu_usage_cores=1.5, memory_available_bytes=5 * GiB),
        NodeSpec(
            "node-b",
            cpus=2,
            cpu_usage_cores=0.5,
            memory_total_bytes=4 * GiB,
            memory_available_bytes=3 * GiB,
        ),
    )
    return Dataset(pods=pods, gauges=gauges, nodes=nodes)


def synthetic_dataset(pods: int, namespaces: int) -> Dataset:
    """``pods`` pods spread over ``namespaces`` namespaces (``ns-0``...), for benchmarks.

    Rates cycle through 0.25..2.5 req/s; each pod has one container and a memory gauge;
    there is a node per 100 pods and a queue per namespace.
    """
    if pods < 0 or namespaces < 1:
        raise ValueError("need pods >= 0 and namespaces >= 1")
    specs = tuple(
        PodSpec(
            namespace=f"ns-{index % namespaces}",
            name=f"pod-{index}",
            request_rate=0.25 * (index % 10 + 1),
            labels={"service": f"svc-{index % 5}"},
            memory_bytes=float((100 + index % 16) * MiB),
            containers=(ContainerSpec("app", cpu_cores=0.01 * (index % 7 + 1)),),
        )
        for index in range(pods)
    )
    gauges = tuple(
        GaugeSpec(
            "queue_depth", {"topic": f"topic-{index}", "name": f"queue-{index}"}, float(index)
        )
        for index in range(namespaces)
    )
    nodes = tuple(NodeSpec(f"node-{index}") for index in range(max(1, pods // 100)))
    return Dataset(pods=specs, gauges=gauges, nodes=nodes)


class Exporter:
    """The exporter's HTTP server: ``/metrics`` at the current time, counting scrapes."""

    def __init__(
        self,
        dataset: Dataset,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
        resolution_ms: int = 1000,
    ) -> None:
        if resolution_ms < 1:
            raise ValueError("resolution_ms must be at least 1")
        self._dataset = dataset
        self.host = host
        self.port = port
        self.clock = clock
        self.resolution_ms = resolution_ms
        self.scrapes = 0
        self._renderer = _Renderer(dataset)
        self._scraped = asyncio.Condition()
        self._runner: web.AppRunner | None = None

    @property
    def dataset(self) -> Dataset:
        return self._dataset

    @property
    def url(self) -> str:
        """Base URL, ``http://host:port``."""
        return f"http://{self.host}:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"{self.url}/metrics"

    @property
    def target(self) -> str:
        """``host:port``, as a Prometheus static target."""
        return f"{self.host}:{self.port}"

    def timestamp_ms(self) -> int:
        """Now, rounded down to the resolution."""
        now_ms = math.floor(self.clock() * 1000)
        return now_ms - now_ms % self.resolution_ms

    def render(self, timestamp_ms: int | None = None) -> str:
        return self._renderer.render(self.timestamp_ms() if timestamp_ms is None else timestamp_ms)

    async def _metrics(self, request: web.Request) -> web.Response:
        body = self.render()
        self.scrapes += 1
        async with self._scraped:
            self._scraped.notify_all()
        return web.Response(body=body.encode(), headers={"Content-Type": CONTENT_TYPE})

    async def wait_for_scrapes(self, count: int, *, timeout: float = 30) -> None:
        """Wait until ``/metrics`` has been served ``count`` times in all."""
        async with asyncio.timeout(timeout), self._scraped:
            await self._scraped.wait_for(lambda: self.scrapes >= count)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()


@contextlib.asynccontextmanager
async def running_exporter(
    dataset: Dataset,
    port: int = 0,
    *,
    host: str = "127.0.0.1",
    clock: Callable[[], float] = time.time,
    resolution_ms: int = 1000,
) -> AsyncIterator[Exporter]:
    """Serve ``dataset`` on ``host:port`` (0: a free port) for the duration of the block."""
    exporter = Exporter(dataset, host=host, port=port, clock=clock, resolution_ms=resolution_ms)
    try:
        await exporter.start()
        yield exporter
    finally:
        await exporter.stop()


def dataset_from_args(pods: int | None, namespaces: int) -> Dataset:
    """The CLI's choice: the demo data set, or a synthetic one when ``pods`` is given."""
    return demo_dataset() if pods is None else synthetic_dataset(pods, namespaces)


async def _serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    dataset = dataset_from_args(args.pods, args.namespaces)
    async with running_exporter(
        dataset, args.port, host=args.host, resolution_ms=args.resolution_ms
    ) as exporter:
        print(f"exporter: serving {exporter.metrics_url}", flush=True)
        await stop.wait()
    print("exporter: stopped", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.exporter", description=__doc__.split("\n")[0] if __doc__ else None
    )
    parser.add_argument("--port", type=int, default=0, help="port to serve on (0: any free)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--pods", type=int, default=None, help="synthetic data set of N pods")
    parser.add_argument("--namespaces", type=int, default=10, help="namespaces of --pods")
    parser.add_argument("--resolution-ms", type=int, default=1000, help="timestamp rounding")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
