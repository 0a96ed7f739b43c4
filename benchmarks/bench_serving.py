"""Serving benchmark: requests/s, p50 and p99 of the adapter against a real Prometheus.

Run from the repository root: ``python benchmarks/bench_serving.py [--seconds 5]
[--concurrency 1,8,32] [--no-cluster]``. The synthetic exporter (2,000 pods in 10 namespaces,
each pod labelled ``app`` in groups of 10 and ``tier`` in groups of 100, and 100 queue
gauges), a real Prometheus and the fake kube-apiserver run as their own processes; the adapter
(config/demo.yaml) runs as its own process too:

- ``cluster`` (the main run): cluster mode against the fake kube-apiserver, requests arriving
  as from the aggregator (front-proxy client certificate, ``X-Remote-User`` is the HPA
  controller), so every request is authenticated and authorized (SubjectAccessReview, cached
  by the adapter for ``--authorization-webhook-cache-authorized-ttl``, 10 s by default);
- ``cluster-ttl``: the same with ``--namespace-query-ttl=5s``, when the adapter has the flag
  (``python -m adapter --help``); skipped with a note otherwise;
- ``no-cluster`` (``--no-cluster``): no authentication; objects from Prometheus' series.

Cases, each at concurrency 1, 8 and 32 (closed loop, ``--seconds`` each): a named pod metric,
``pods/*`` with a label selector selecting 10 pods and 100 pods (as HPA Pods metrics ask), an
external metric with a label selector. Each case cycles over up to 200 distinct paths (over
namespaces, pods, groups, queues), so no single cached item serves it, and visits every path
once just before it is measured, so that the adapter's SAR cache holds them (as it would for a
client asking again within 10 s; the named pod metric, whose SAR key is the pod, uses a fresh
set of pods at each concurrency so that no entry expires during a measurement). Reported:
requests/s, p50, p99, max, adapter CPU ms per request (/proc/<pid>/stat), Prometheus queries
per request and SubjectAccessReviews, CPU of the machine and of work outside the benchmark,
errors; adapter start-up to ready, RSS idle and after load. Numbers only; nothing is asserted.
Everything it starts, it stops.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from multidict import CIMultiDict
from yarl import URL

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.report import (  # noqa: E402
    Logger,
    cpu_percent,
    cpu_sample,
    describe_machine,
    fmt,
    markdown_table,
    percentile,
    process_groups,
    process_rss_mb,
    run,
)
from harness.exporter import Dataset, GaugeSpec, PodSpec  # noqa: E402
from harness.fleet import (  # noqa: E402
    CUSTOM,
    EXTERNAL,
    HPA_GROUPS,
    HPA_USER,
    METRIC,
    KubeObject,
    Stack,
    adapter_supports,
    running_stack,
)

__all__ = [
    "MODES",
    "Case",
    "Mode",
    "ServingLayout",
    "ServingResult",
    "client_session",
    "measure_serving",
    "serving_tables",
]

CONFIG = REPO / "config" / "demo.yaml"
TTL_FLAG = "--namespace-query-ttl"
MAX_PATHS = 200


@dataclass(frozen=True)
class Case:
    """A request kind: distinct paths cycled through, and how many items each answers.

    ``path_sets``: the paths of the first, second, ... concurrency level (cycled). The named
    pod metric uses disjoint sets: its SubjectAccessReview cache key is the pod, so a fresh
    set lets each level's warm-up fill the (10 s) cache anew instead of finding the previous
    level's entries, which would then expire during the measurement. The keys of ``pods/*``
    and external requests are per namespace only: a few SARs per 10 s whatever the set."""

    name: str
    path_sets: tuple[tuple[str, ...], ...]
    items: int

    def paths(self, level: int) -> tuple[str, ...]:
        return self.path_sets[level % len(self.path_sets)]


@dataclass(frozen=True)
class ServingLayout:
    """``namespaces`` times ``pods_per_namespace`` pods (``ns-<n>/pod-<j>``, labels
    ``app=app-<j // 10>`` and ``tier=tier-<j // 100>`` in Prometheus and in the fake
    kube-apiserver), ``queues`` queue gauges, and ``padding_series`` gauges no rule selects
    (to give Prometheus a bigger index, as a real one has)."""

    namespaces: int = 10
    pods_per_namespace: int = 200
    queues: int = 100
    padding_series: int = 0

    def __post_init__(self) -> None:
        if self.pods_per_namespace < 100 or self.namespaces < 1 or self.queues < 1:
            raise ValueError("need >= 100 pods per namespace, >= 1 namespace and >= 1 queue")

    def pods(self) -> list[tuple[str, str, dict[str, str]]]:
        return [
            (f"ns-{n}", f"pod-{j}", {"app": f"app-{j // 10}", "tier": f"tier-{j // 100}"})
            for n in range(self.namespaces)
            for j in range(self.pods_per_namespace)
        ]

    def dataset(self) -> Dataset:
        pods = tuple(
            PodSpec(ns, name, request_rate=0.25 * (k % 10 + 1), labels=labels)
            for k, (ns, name, labels) in enumerate(self.pods())
        )
        gauges = [
            GaugeSpec("queue_depth", {"name": f"queue-{k}", "topic": f"topic-{k}"}, float(k))
            for k in range(self.queues)
        ]
        gauges += [
            GaugeSpec("bench_padding", {"shard": str(k % 100), "id": str(k)}, 1.0)
            for k in range(self.padding_series)
        ]
        return Dataset(pods=pods, gauges=tuple(gauges))

    def kube_objects(self) -> list[KubeObject]:
        objects: list[KubeObject] = [
            ("v1/namespaces", {"metadata": {"name": f"ns-{n}"}, "spec": {}})
            for n in range(self.namespaces)
        ]
        for ns, name, labels in self.pods():
            meta = {"name": name, "namespace": ns, "labels": labels}
            objects.append(("v1/pods", {"metadata": meta, "status": {"phase": "Running"}}))
        return objects

    def cases(self) -> list[Case]:
        m, per_ns = self.namespaces, self.pods_per_namespace
        pod_path = f"{CUSTOM}/namespaces/ns-{{}}/pods/pod-{{}}/{METRIC}"
        pods = [(n, j) for j in range(per_ns) for n in range(m)]
        # A fixed shuffle (7919 is prime, so this is a permutation unless it divides the count).
        step = 7919 if len(pods) % 7919 else 1
        shuffled = [pods[(i * step) % len(pods)] for i in range(len(pods))]
        named = tuple(
            tuple(
                pod_path.format(*shuffled[(level * MAX_PATHS + i) % len(shuffled)])
                for i in range(min(MAX_PATHS, len(shuffled)))
            )
            for level in range(3)
        )
        star = f"{CUSTOM}/namespaces/ns-{{}}/pods/*/{METRIC}?labelSelector={{}}"
        tens = [star.format(i % m, f"app%3Dapp-{i // m}") for i in range(m * (per_ns // 10))]
        hundreds = [star.format(i % m, f"tier%3Dtier-{i // m}") for i in range(m * (per_ns // 100))]
        external = [
            f"{EXTERNAL}/namespaces/ns-{k % m}/queue_depth?labelSelector=name%3Dqueue-{k}"
            for k in range(self.queues)
        ]
        return [
            Case("named pod metric", named, 1),
            Case("pods/* selecting 10 pods", (tuple(tens[:MAX_PATHS]),), 10),
            Case("pods/* selecting 100 pods", (tuple(hundreds[:MAX_PATHS]),), 100),
            Case("external metric", (tuple(external[:MAX_PATHS]),), 1),
        ]


@dataclass(frozen=True)
class Mode:
    """How the adapter runs: cluster or not, extra flags, and a flag it must have."""

    name: str
    description: str
    no_cluster: bool = False
    flags: tuple[str, ...] = ()
    requires: str | None = None


MODES = {
    "cluster": Mode("cluster", "cluster mode: front-proxy certificate, authentication and SAR"),
    "cluster-ttl": Mode(
        "cluster-ttl",
        "cluster mode with --namespace-query-ttl=5s",
        flags=(f"{TTL_FLAG}=5s",),
        requires=TTL_FLAG,
    ),
    "no-cluster": Mode("no-cluster", "--no-cluster (no authentication)", no_cluster=True),
}


@dataclass
class ServingResult:
    """One (mode, case, concurrency) measurement; start-up and RSS are the mode's adapter's."""

    mode: str
    case: str
    concurrency: int
    requests: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    adapter_cpu_ms_per_request: float
    prometheus_queries_per_request: float
    sars: int
    items_per_response: int
    distinct_paths: int
    startup_seconds: float
    idle_rss_mb: float
    loaded_rss_mb: float = 0.0
    cpu_percent: dict[str, float] = field(default_factory=dict)
    adapter_flags: list[str] = field(default_factory=list)


def client_session(
    ssl_context: Any, *, identity: bool, connections: int, timeout: float = 30
) -> aiohttp.ClientSession:
    """One keep-alive session as the aggregator would hold: ``identity`` adds the HPA
    controller's X-Remote-User and X-Remote-Group headers."""
    headers: CIMultiDict[str] = CIMultiDict({"Accept": "application/json"})
    if identity:
        headers.add("X-Remote-User", HPA_USER)
        for group in HPA_GROUPS:
            headers.add("X-Remote-Group", group)
    connector = aiohttp.TCPConnector(
        limit=connections, ssl=ssl_context, keepalive_timeout=120, enable_cleanup_closed=False
    )
    return aiohttp.ClientSession(
        connector=connector,
        headers=headers,
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=timeout),
        skip_auto_headers=("User-Agent", "Accept-Encoding"),
    )


async def _get(session: aiohttp.ClientSession, url: URL) -> tuple[int, bytes]:
    async with session.get(url) as response:
        return response.status, await response.read()


async def _drive(
    session: aiohttp.ClientSession, urls: Sequence[URL], seconds: float, concurrency: int
) -> tuple[list[float], int, float]:
    """Closed loop: ``concurrency`` workers, each sending its next request when the previous
    one is answered, over ``urls`` in turn, for ``seconds``. (latencies, errors, elapsed)."""
    latencies: list[float] = []
    errors = 0
    position = 0
    count = len(urls)
    clock = time.perf_counter
    deadline = clock() + seconds

    async def worker() -> None:
        nonlocal errors, position
        while clock() < deadline:
            url = urls[position % count]
            position += 1
            started = clock()
            try:
                async with session.get(url) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
            except (aiohttp.ClientError, TimeoutError):
                errors += 1
            latencies.append(clock() - started)

    began = clock()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors, clock() - began


async def _warm_up(
    session: aiohttp.ClientSession, urls: Sequence[URL], concurrency: int, log: Logger
) -> int:
    """Visit every path once; return the items of the first answer (-1 when it failed)."""
    status, body = await _get(session, urls[0])
    items = -1
    if status == 200:
        items = len(orjson.loads(body).get("items") or [])
    else:
        log(f"  warm-up: HTTP {status} for {urls[0]}: {body[:300]!r}")
    queue = list(urls[1:])

    async def worker() -> None:
        while queue:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                await _get(session, queue.pop())

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return items


async def _measure_mode(
    stack: Stack,
    mode: Mode,
    cases: Sequence[Case],
    seconds: float,
    concurrencies: Sequence[int],
    log: Logger,
) -> list[ServingResult]:
    adapter = stack.adapter(CONFIG, mode.flags, no_cluster=mode.no_cluster)
    started = time.monotonic()
    await adapter.start(timeout=180)
    startup = time.monotonic() - started
    try:
        assert adapter.process is not None
        pid = adapter.process.pid
        await asyncio.sleep(1)  # let start-up work settle before the idle RSS
        idle_rss = process_rss_mb(pid)
        log(f"[{mode.name}] adapter ready in {startup:.2f}s, idle RSS {idle_rss:.1f} MB")
        pids = process_groups(
            {
                "adapter": pid,
                "prometheus": stack.prometheus.pid,
                "apiserver": stack.kube.pid,
                "exporter": stack.exporter.pid,
            }
        )
        results: list[ServingResult] = []
        session = client_session(
            stack.client_ssl(adapter, front_proxy=not mode.no_cluster),
            identity=not mode.no_cluster,
            connections=max(concurrencies),
        )
        async with session:
            for case in cases:
                for level, concurrency in enumerate(concurrencies):
                    urls = [URL(adapter.url + path, encoded=True) for path in case.paths(level)]
                    items = await _warm_up(session, urls, concurrency, log)
                    sars_before = (await stack.kube_stats())["sar"]
                    queries_before = await stack.prometheus_queries()
                    before = cpu_sample(pids)
                    latencies, errors, elapsed = await _drive(session, urls, seconds, concurrency)
                    after = cpu_sample(pids)
                    queries = await stack.prometheus_queries() - queries_before
                    sars = (await stack.kube_stats())["sar"] - sars_before
                    requests = len(latencies)
                    adapter_cpu = after.processes["adapter"] - before.processes["adapter"]
                    result = ServingResult(
                        mode=mode.name,
                        case=case.name,
                        concurrency=concurrency,
                        requests=requests,
                        errors=errors,
                        seconds=elapsed,
                        rps=requests / elapsed if elapsed > 0 else 0.0,
                        p50_ms=percentile(latencies, 50) * 1000,
                        p99_ms=percentile(latencies, 99) * 1000,
                        max_ms=max(latencies, default=0.0) * 1000,
                        adapter_cpu_ms_per_request=adapter_cpu / max(requests, 1) * 1000,
                        prometheus_queries_per_request=queries / max(requests, 1),
                        sars=sars,
                        items_per_response=items,
                        distinct_paths=len(urls),
                        startup_seconds=startup,
                        idle_rss_mb=idle_rss,
                        cpu_percent={k: round(v, 1) for k, v in cpu_percent(before, after).items()},
                        adapter_flags=list(mode.flags),
                    )
                    results.append(result)
                    log(f"[{mode.name}] {case.name}, c={concurrency}: {result.rps:,.0f} req/s, "
                        f"p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, "
                        f"{result.adapter_cpu_ms_per_request:.3f} ms CPU/req, "
                        f"{errors} errors")  # fmt: skip
        loaded_rss = process_rss_mb(pid)
        for result in results:
            result.loaded_rss_mb = loaded_rss
        return results
    finally:
        await adapter.close()


async def measure_serving(
    *,
    seconds: float = 5.0,
    concurrencies: Sequence[int] = (1, 8, 32),
    modes: Sequence[str] = ("cluster", "cluster-ttl"),
    layout: ServingLayout | None = None,
    scrape_interval: str = "5s",
    workdir: Path | None = None,
    notes: list[str] | None = None,
    log: Logger = print,
) -> list[ServingResult]:
    """Start the stack once and measure each mode (a fresh adapter each); one result per
    (mode, case, concurrency). Modes whose flag the adapter lacks are skipped with a note in
    ``notes``."""
    layout = layout or ServingLayout()
    notes = notes if notes is not None else []
    selected: list[Mode] = []
    for name in modes:
        mode = MODES[name]
        if mode.requires and not await adapter_supports(mode.requires):
            notes.append(
                f"serving: mode {name} skipped: `python -m adapter --help` has no {mode.requires}"
            )
            log(notes[-1])
            continue
        selected.append(mode)
    results: list[ServingResult] = []
    with tempfile.TemporaryDirectory(prefix="bench-serving-", dir=workdir) as tmp:
        async with running_stack(
            layout.dataset(),
            layout.kube_objects(),
            Path(tmp),
            scrape_interval=scrape_interval,
            log=log,
        ) as stack:
            for mode in selected:
                results += await _measure_mode(
                    stack, mode, layout.cases(), seconds, concurrencies, log
                )
    return results


def serving_tables(results: Sequence[ServingResult]) -> str:
    """One markdown table per mode, with its adapter's start-up and RSS."""
    out: list[str] = []
    for mode in dict.fromkeys(r.mode for r in results):
        rows = [r for r in results if r.mode == mode]
        first = rows[0]
        out.append(f"### Serving: {MODES[mode].description if mode in MODES else mode}\n")
        out.append(
            markdown_table(
                (
                    "case",
                    "conc.",
                    "req/s",
                    "p50 ms",
                    "p99 ms",
                    "max ms",
                    "adapter CPU ms/req",
                    "Prom queries/req",
                    "SARs",
                    "items",
                    "other CPU %",
                    "machine CPU %",
                    "errors",
                ),
                [
                    (
                        r.case,
                        r.concurrency,
                        fmt(r.rps, 0),
                        fmt(r.p50_ms, 2),
                        fmt(r.p99_ms, 2),
                        fmt(r.max_ms, 1),
                        fmt(r.adapter_cpu_ms_per_request, 3),
                        fmt(r.prometheus_queries_per_request, 2),
                        r.sars,
                        r.items_per_response,
                        fmt(r.cpu_percent.get("other"), 0),
                        fmt(r.cpu_percent.get("machine"), 0),
                        r.errors,
                    )
                    for r in rows
                ],
            )
        )
        out.append(
            f"\nadapter start-up to ready {first.startup_seconds:.2f} s; RSS idle "
            f"{first.idle_rss_mb:.1f} MB, after load {first.loaded_rss_mb:.1f} MB; "
            f"flags: {' '.join(first.adapter_flags) or '(defaults)'}\n"
        )
    return "\n".join(out)


async def _main(args: argparse.Namespace) -> None:
    modes = [m for m in args.modes.split(",") if m]
    if args.no_cluster and "no-cluster" not in modes:
        modes.append("no-cluster")
    layout = ServingLayout(args.namespaces, args.pods_per_namespace, args.queues, args.padding)
    notes: list[str] = []
    results = await measure_serving(
        seconds=args.seconds,
        concurrencies=[int(c) for c in args.concurrency.split(",")],
        modes=modes,
        layout=layout,
        scrape_interval=args.scrape_interval,
        notes=notes,
    )
    machine = describe_machine()
    loop = type(asyncio.get_running_loop()).__module__
    pods = layout.namespaces * layout.pods_per_namespace
    print(
        f"\nmachine: {machine['cores']} cores ({machine['cpu_model']}), Python "
        f"{machine['python']}, {machine['prometheus']}, load generator loop {loop}; {pods}"
        f" pods in {layout.namespaces} namespaces; {args.seconds:g}s per case; load generator, "
        "adapter, Prometheus, exporter and fake kube-apiserver share the machine\n"
    )
    print(serving_tables(results))
    for note in notes:
        print(f"note: {note}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=5, help="per case and concurrency")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated")
    parser.add_argument("--modes", default="cluster,cluster-ttl", help=", ".join(MODES))
    parser.add_argument("--no-cluster", action="store_true", help="add the no-cluster mode")
    parser.add_argument("--namespaces", type=int, default=10)
    parser.add_argument("--pods-per-namespace", type=int, default=200)
    parser.add_argument("--queues", type=int, default=100)
    parser.add_argument("--padding", type=int, default=0, help="extra series no rule selects")
    parser.add_argument("--scrape-interval", default="5s")
    cli_args = parser.parse_args()
    run(lambda: _main(cli_args))
