"""HPA fleet benchmark: how many HorizontalPodAutoscalers one adapter replica serves.

Run from the repository root: ``python benchmarks/bench_fleet.py [--steps 1000,2500,...]``.

N HPAs with distinct targets (harness/fleet.py: 50 per namespace; of every 20, 12 Pods metrics
over an app's 2-3 pods by label selector, 5 Object metrics on a Service, 3 External metrics on
a queue) call the adapter as the HPA controller does through kube-apiserver's aggregator: the
front-proxy client certificate, ``X-Remote-User: system:serviceaccount:kube-system:
horizontal-pod-autoscaler``, authentication and authorization (SubjectAccessReview through the
fake kube-apiserver) on. Each HPA asks once per 15 s sync period at its own fixed phase within
the period (open loop: phases are spread by the golden ratio, so they stay even as the fleet
grows; a slow answer never delays another HPA's request). The load generator is one aiohttp
session with keep-alive connections and precomputed URLs, and it measures its own lateness
(actual send time minus scheduled time), so that a client bottleneck is not blamed on the
adapter.

N grows in steps; each step runs one warm-up period, then ``--periods`` (2) measured sync
periods at that size, and reports achieved req/s, p50/p99/max (overall and per kind), errors,
client lateness, CPU % of every process (adapter, fake kube-apiserver, Prometheus, exporter,
load generator, whole machine, in % of one core), adapter RSS, SubjectAccessReviews and
Prometheus queries per second. The ramp stops at the first step with p99 > 100 ms, errors,
or load-generator lateness p99 > 25 ms; the largest N before it is the result.

Variants: the adapter's default flags; ``--namespace-query-ttl=5s`` when the adapter has it;
and ``--authorization-webhook-cache-authorized-ttl=1m`` (``--sar-variant auto``: only after a
run that stopped while authorization was the limit). The default SAR cache (10 s, as in Go) is
shorter than the 15 s sync period, so each Object-metric HPA (the SAR key holds the object's
name) and each namespace's ``pods/*`` and external-metric key costs a SubjectAccessReview every
sync; they run through the adapter's authorization client, limited like Go's to 200/s (burst
400), and are answered by the fake kube-apiserver, a single-threaded Python process on the same
machine. "Limit" means SARs at >= 90% of 200/s, or the fake taking a large share of the CPU.
Numbers only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import importlib
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from yarl import URL

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.bench_serving import CONFIG, TTL_FLAG, client_session  # noqa: E402
from benchmarks.report import (  # noqa: E402
    CpuSample,
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
from harness.fleet import FleetLayout, Stack, adapter_supports, running_stack  # noqa: E402

__all__ = [
    "DEFAULT_STEPS",
    "VARIANTS",
    "FleetResult",
    "FleetRun",
    "FleetStep",
    "fleet_tables",
    "measure_fleet",
]

DEFAULT_STEPS = (1000, 2500, 5000, 7500, 10000, 12500, 15000, 20000)
SAR_TTL_FLAG = "--authorization-webhook-cache-authorized-ttl"
VARIANTS: dict[str, tuple[str, ...]] = {
    "default": (),
    "ttl": (f"{TTL_FLAG}=5s",),
    "sar-1m": (f"{SAR_TTL_FLAG}=1m",),
}
KINDS = ("pods", "object", "external")
GOLDEN = 0.6180339887498949
CLIENT_LATE = "load generator late"
# "other" CPU (not the benchmark's processes) above which a step is marked as disturbed.
DISTURBED_PERCENT = 30.0


def _sar_client_qps() -> float:
    """The adapter's rate limit for SubjectAccessReviews (its delegated authorization client:
    200/s, burst 400, as the Go adapter's); 200 if it cannot be read."""
    try:
        run_module = importlib.import_module("adapter.server.run")
        return float(getattr(run_module, "DELEGATED_QPS", 200.0))
    except Exception:
        return 200.0


SAR_CLIENT_QPS = _sar_client_qps()


@dataclass
class FleetStep:
    """One fleet size, measured over whole sync periods."""

    hpas: int
    seconds: float
    target_rps: float
    achieved_rps: float
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    p99_ms_by_kind: dict[str, float]
    late_p50_ms: float
    late_p99_ms: float
    late_max_ms: float
    adapter_rss_mb: float
    cpu_percent: dict[str, float]
    sars: int
    sars_per_second: float
    prometheus_queries_per_second: float
    error_kinds: dict[str, int]
    verdict: str
    # From the adapter's /metrics over the window (None when it does not export them):
    # event-loop lag probes over 50 ms and over 250 ms late, and metric relists.
    loop_stalls_over_50ms: int | None = None
    loop_stalls_over_250ms: int | None = None
    relists: int | None = None

    @property
    def passed(self) -> bool:
        return self.verdict == "ok"


@dataclass
class FleetRun:
    """The ramp of one adapter variant (flags)."""

    variant: str
    adapter_flags: list[str]
    startup_seconds: float
    idle_rss_mb: float
    steps: list[FleetStep] = field(default_factory=list)
    largest_sustained: int = 0
    stop_reason: str = ""
    bottleneck: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class FleetResult:
    """The fleet at its largest size, the schedule, and one run per variant."""

    max_hpas: int
    hpas_per_namespace: int
    namespaces: int
    pods: int
    services: int
    queues: int
    series: int
    period_seconds: float
    periods: int
    warmup_periods: int
    scrape_interval: str
    p99_limit_ms: float
    lateness_limit_ms: float
    runs: list[FleetRun] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class _Window:
    """What one step's measured window collected."""

    latencies: list[float] = field(default_factory=list)
    lateness: list[float] = field(default_factory=list)
    by_kind: dict[str, list[float]] = field(default_factory=dict)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    before: CpuSample | None = None
    after: CpuSample | None = None
    sars: int = 0
    queries: int = 0
    rss_mb: float = 0.0
    adapter_before: dict[str, float] | None = None
    adapter_after: dict[str, float] | None = None


def phase(index: int) -> float:
    """HPA ``index``'s fixed phase in the sync period, in [0, 1): the golden-ratio sequence,
    even for any prefix of the fleet, so phases do not move as the fleet grows."""
    return (index * GOLDEN) % 1.0


async def _run_step(
    stack: Stack,
    session: aiohttp.ClientSession,
    urls: Sequence[URL],
    kinds: Sequence[str],
    hpas: int,
    pids: dict[str, list[int]],
    adapter_url: str,
    *,
    period: float,
    periods: int,
    warmup_periods: int,
    p99_limit_ms: float,
    lateness_limit_ms: float,
) -> FleetStep:
    # perf_counter, not loop.time(): uvloop's loop clock has a resolution of 1 ms.
    loop = asyncio.get_running_loop()
    clock = time.perf_counter
    order = sorted(range(hpas), key=phase)
    offsets = [phase(i) * period for i in order]
    cycles = warmup_periods + periods
    start = clock() + 0.2
    window_start = start + warmup_periods * period
    window_end = start + cycles * period
    window = _Window(by_kind={kind: [] for kind in KINDS})
    pending: set[asyncio.Task[None]] = set()

    async def fire(index: int, due: float, measured: bool) -> None:
        sent = clock()
        error = ""
        try:
            async with session.get(urls[index]) as response:
                await response.read()
                if response.status != 200:
                    error = f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError) as problem:
            error = type(problem).__name__
        if measured:
            latency = clock() - sent
            window.latencies.append(latency)
            window.lateness.append(sent - due)
            window.by_kind[kinds[index]].append(latency)
            if error:
                window.errors[error] += 1

    async def snapshot(at: float, first: bool) -> None:
        await asyncio.sleep(max(0.0, at - clock()))
        sample = cpu_sample(pids)
        sars = (await stack.kube_stats())["sar"]
        queries = await stack.prometheus_queries()
        adapter_metrics = await _adapter_metrics(session, adapter_url)
        if first:
            window.before, window.sars, window.queries = sample, sars, queries
            window.adapter_before = adapter_metrics
        else:
            window.after = sample
            window.adapter_after = adapter_metrics
            window.sars, window.queries = sars - window.sars, queries - window.queries
            window.rss_mb = sum(process_rss_mb(p, tree=False) for p in pids["adapter"])

    async def sampler() -> None:
        await snapshot(window_start, True)
        await snapshot(window_end, False)

    sampling = loop.create_task(sampler())
    for cycle in range(cycles):
        base = start + cycle * period
        measured = cycle >= warmup_periods
        for index, offset in zip(order, offsets, strict=True):
            due = base + offset
            delay = due - clock()
            if delay > 0.0005:
                await asyncio.sleep(delay)
            task = loop.create_task(fire(index, due, measured))
            pending.add(task)
            task.add_done_callback(pending.discard)
    await sampling
    if pending:
        await asyncio.wait(pending, timeout=60)

    seconds = window_end - window_start
    assert window.before is not None and window.after is not None
    cpu = {k: round(v, 1) for k, v in cpu_percent(window.before, window.after).items()}
    p99_ms = percentile(window.latencies, 99) * 1000
    late_p99_ms = percentile(window.lateness, 99) * 1000
    errors = sum(window.errors.values())
    reasons = []
    if errors:
        reasons.append(f"{errors} errors")
    if p99_ms > p99_limit_ms:
        reasons.append(f"p99 > {p99_limit_ms:g} ms")
    if late_p99_ms > lateness_limit_ms:
        reasons.append(f"{CLIENT_LATE} (p99 {late_p99_ms:.0f} ms)")
    verdict = "; ".join(reasons) or "ok"
    stalls_50 = stalls_250 = relists = None
    if window.adapter_before is not None and window.adapter_after is not None:
        delta = {k: window.adapter_after[k] - window.adapter_before.get(k, 0.0)
                 for k in window.adapter_after}  # fmt: skip
        if "lag_count" in delta:
            stalls_50 = round(delta["lag_count"] - delta.get("lag_le_0.05", 0.0))
            stalls_250 = round(delta["lag_count"] - delta.get("lag_le_0.25", 0.0))
        if "relists" in delta:
            relists = round(delta["relists"])
    return FleetStep(
        hpas=hpas,
        seconds=seconds,
        target_rps=hpas / period,
        achieved_rps=len(window.latencies) / seconds,
        requests=len(window.latencies),
        errors=errors,
        p50_ms=percentile(window.latencies, 50) * 1000,
        p99_ms=p99_ms,
        max_ms=max(window.latencies, default=0.0) * 1000,
        p99_ms_by_kind={k: round(percentile(v, 99) * 1000, 2) for k, v in window.by_kind.items()},
        late_p50_ms=percentile(window.lateness, 50) * 1000,
        late_p99_ms=late_p99_ms,
        late_max_ms=max(window.lateness, default=0.0) * 1000,
        adapter_rss_mb=window.rss_mb,
        cpu_percent=cpu,
        sars=window.sars,
        sars_per_second=window.sars / seconds,
        prometheus_queries_per_second=window.queries / seconds,
        error_kinds=dict(window.errors),
        verdict=verdict,
        loop_stalls_over_50ms=stalls_50,
        loop_stalls_over_250ms=stalls_250,
        relists=relists,
    )


async def _adapter_metrics(session: aiohttp.ClientSession, url: str) -> dict[str, float] | None:
    """Counters of the adapter's /metrics: event-loop lag histogram (count, le buckets) and
    relists; None when they cannot be read."""
    try:
        async with session.get(url + "/metrics") as response:
            if response.status != 200:
                return None
            text = await response.text()
    except (aiohttp.ClientError, TimeoutError):
        return None
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("prometheus_adapter_event_loop_lag_seconds_count"):
            found["lag_count"] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("prometheus_adapter_event_loop_lag_seconds_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            found[f"lag_le_{le}"] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("prometheus_adapter_relist_total{"):
            found["relists"] = found.get("relists", 0.0) + float(line.rsplit(" ", 1)[1])
    return found


def _step_line(step: FleetStep) -> str:
    cpu = step.cpu_percent
    return (
        f"{step.hpas:,} HPAs: {step.achieved_rps:,.0f}/{step.target_rps:,.0f} req/s, "
        f"p50 {step.p50_ms:.1f} ms, p99 {step.p99_ms:.1f} ms, max {step.max_ms:.0f} ms, "
        f"late p99 {step.late_p99_ms:.1f} ms, errors {step.errors}, CPU adapter "
        f"{cpu.get('adapter', 0):.0f}% apiserver {cpu.get('apiserver', 0):.0f}% prometheus "
        f"{cpu.get('prometheus', 0):.0f}% loadgen {cpu.get('loadgen', 0):.0f}% other "
        f"{cpu.get('other', 0):.0f}% machine {cpu.get('machine', 0):.0f}%, "
        f"{step.sars_per_second:.0f} SAR/s, "
        f"{step.prometheus_queries_per_second:.0f} Prometheus queries/s, adapter RSS "
        f"{step.adapter_rss_mb:.0f} MB: {step.verdict}"
    )


def _bottleneck(step: FleetStep) -> str:
    """Where the CPU went at a step: who used the most, and whether a process or the machine
    was saturated (a single-threaded process near 100 % of a core; the machine near all its
    cores)."""
    cpu = step.cpu_percent
    processes = sorted(
        ((name, value) for name, value in cpu.items() if name not in ("machine", "other")),
        key=lambda item: -item[1],
    )
    top = ", ".join(f"{name} {value:.0f}%" for name, value in processes[:4])
    saturated = [name for name, value in processes if value >= 90]
    cores = 100 * (os.cpu_count() or 1)
    machine = cpu.get("machine", 0.0)
    parts = [f"CPU (% of one core): {top}; machine {machine:.0f}% of {cores:.0f}%"]
    if machine >= 0.9 * cores:
        parts.append("the machine's CPUs are saturated")
    if saturated:
        parts.append("at a core's limit: " + ", ".join(saturated))
    if step.sars_per_second >= 0.9 * SAR_CLIENT_QPS:
        parts.append(
            f"SubjectAccessReviews at {step.sars_per_second:.0f}/s, the adapter's "
            f"authorization client limit ({SAR_CLIENT_QPS:.0f}/s, as in Go): requests queue "
            "for authorization"
        )
    if step.loop_stalls_over_250ms:
        parts.append(
            f"the adapter's event loop stalled over 250 ms {step.loop_stalls_over_250ms} "
            f"times ({step.relists} relists in the window)"
        )
    other = cpu.get("other", 0.0)
    if other >= DISTURBED_PERCENT:
        parts.append(
            f"DISTURBED: {other:.0f}% of a core went to work outside this benchmark's "
            "processes (other jobs on the machine, or kernel time)"
        )
    return "; ".join(parts)


def _authorization_bound(step: FleetStep) -> bool:
    """Whether SubjectAccessReviews limited the step: the fake kube-apiserver took a large
    share of the CPU, or SARs ran at the adapter's authorization client rate limit."""
    api = step.cpu_percent.get("apiserver", 0.0)
    adapter = step.cpu_percent.get("adapter", 0.0)
    at_limit = step.sars_per_second >= 0.9 * SAR_CLIENT_QPS
    return at_limit or api >= 50 or api >= 0.5 * adapter


async def _run_variant(
    stack: Stack,
    layout: FleetLayout,
    name: str,
    flags: Sequence[str],
    steps: Sequence[int],
    *,
    period: float,
    periods: int,
    warmup_periods: int,
    p99_limit_ms: float,
    lateness_limit_ms: float,
    connections: int,
    log: Logger,
) -> FleetRun:
    adapter = stack.adapter(CONFIG, flags)
    started = time.monotonic()
    await adapter.start(timeout=300)
    startup = time.monotonic() - started
    try:
        assert adapter.process is not None
        pid = adapter.process.pid
        await asyncio.sleep(1)
        result = FleetRun(name, list(flags), startup, process_rss_mb(pid))
        log(f"[fleet {name}] adapter ready in {startup:.2f}s, idle RSS {result.idle_rss_mb:.1f} MB")
        hpas = layout.hpa_list()
        urls = [URL(adapter.url + hpa.path, encoded=True) for hpa in hpas]
        kinds = [hpa.kind for hpa in hpas]
        pids = process_groups(
            {
                "adapter": pid,
                "apiserver": stack.kube.pid,
                "prometheus": stack.prometheus.pid,
                "exporter": stack.exporter.pid,
            }
        )
        session = client_session(stack.client_ssl(adapter), identity=True, connections=connections)
        async with session:
            # The first request of each kind starts the adapter's watch caches and connections.
            for kind in KINDS:
                first = next(i for i, k in enumerate(kinds) if k == kind)
                began = time.monotonic()
                async with session.get(urls[first], timeout=aiohttp.ClientTimeout(120)) as resp:
                    body = await resp.read()
                if resp.status != 200:
                    result.notes.append(f"first {kind} request: HTTP {resp.status}: {body[:200]!r}")
                    log(result.notes[-1])
                log(f"[fleet {name}] first {kind} request: HTTP {resp.status} in "
                    f"{time.monotonic() - began:.2f}s")  # fmt: skip
            for hpas_now in steps:
                step = await _run_step(
                    stack,
                    session,
                    urls,
                    kinds,
                    hpas_now,
                    pids,
                    adapter.url,
                    period=period,
                    periods=periods,
                    warmup_periods=warmup_periods,
                    p99_limit_ms=p99_limit_ms,
                    lateness_limit_ms=lateness_limit_ms,
                )
                result.steps.append(step)
                log(f"[fleet {name}] {_step_line(step)}")
                if step.passed:
                    result.largest_sustained = hpas_now
                else:
                    result.stop_reason = f"{hpas_now:,} HPAs: {step.verdict}"
                    break
            else:
                result.stop_reason = f"every step passed (largest step {steps[-1]:,})"
        last = result.steps[-1] if result.steps else None
        if last is not None:
            result.bottleneck = _bottleneck(last)
            other = last.cpu_percent.get("other", 0.0)
            if not last.passed and other >= DISTURBED_PERCENT:
                result.notes.append(
                    f"the step that stopped the ramp was disturbed: {other:.0f}% of a core went "
                    "to work outside this benchmark; measure again on a quiet machine"
                )
            if last.verdict.startswith(CLIENT_LATE):
                result.notes.append(
                    "stopped by the load generator's own lateness: the largest N is a lower "
                    "bound set by the client, not the adapter"
                )
            elif CLIENT_LATE in last.verdict:
                result.notes.append(
                    "where the ramp stopped the load generator was late too: its latencies "
                    "include some of its own queueing"
                )
        return result
    finally:
        await adapter.close()


async def measure_fleet(
    *,
    steps: Sequence[int] = DEFAULT_STEPS,
    variants: Sequence[str] = ("default", "ttl"),
    sar_variant: str = "auto",
    period: float = 15.0,
    periods: int = 2,
    warmup_periods: int = 1,
    hpas_per_namespace: int = 50,
    scrape_interval: str = "10s",
    p99_limit_ms: float = 100.0,
    lateness_limit_ms: float = 25.0,
    connections: int = 256,
    workdir: Path | None = None,
    log: Logger = print,
) -> FleetResult:
    """Build the fleet for the largest step, start the stack once, and ramp each variant
    (a fresh adapter each). ``sar_variant``: "auto" adds ``<variant>+sar-1m`` after a run
    that stopped while the fake kube-apiserver was a bottleneck, "always" after every run,
    "never" not at all."""
    steps = sorted(set(steps))
    layout = FleetLayout(steps[-1], hpas_per_namespace)
    dataset = layout.dataset()
    result = FleetResult(
        max_hpas=layout.hpas,
        hpas_per_namespace=hpas_per_namespace,
        namespaces=len(layout.namespaces()),
        pods=len(dataset.pods),
        services=len(layout.services()),
        queues=len(layout.queues()),
        series=len(dataset.pods) + len(dataset.gauges),
        period_seconds=period,
        periods=periods,
        warmup_periods=warmup_periods,
        scrape_interval=scrape_interval,
        p99_limit_ms=p99_limit_ms,
        lateness_limit_ms=lateness_limit_ms,
    )
    planned: list[tuple[str, tuple[str, ...]]] = []
    for name in variants:
        flags = VARIANTS[name]
        if name == "ttl" and not await adapter_supports(TTL_FLAG):
            result.notes.append(f"fleet: variant ttl skipped: the adapter has no {TTL_FLAG}")
            log(result.notes[-1])
            continue
        planned.append((name, flags))
    log(
        f"fleet: up to {layout.hpas:,} HPAs in {result.namespaces} namespaces, "
        f"{result.pods:,} pods, {result.services:,} services, {result.queues:,} queues "
        f"({result.series:,} series)"
    )
    with tempfile.TemporaryDirectory(prefix="bench-fleet-", dir=workdir) as tmp:
        async with running_stack(
            dataset,
            layout.kube_objects(),
            Path(tmp),
            scrape_interval=scrape_interval,
            wait_timeout=300,
            log=log,
        ) as stack:
            del dataset
            while planned:
                name, flags = planned.pop(0)
                fleet_run = await _run_variant(
                    stack,
                    layout,
                    name,
                    flags,
                    steps,
                    period=period,
                    periods=periods,
                    warmup_periods=warmup_periods,
                    p99_limit_ms=p99_limit_ms,
                    lateness_limit_ms=lateness_limit_ms,
                    connections=connections,
                    log=log,
                )
                result.runs.append(fleet_run)
                if "sar-1m" in name or sar_variant == "never" or not fleet_run.steps:
                    continue
                last = fleet_run.steps[-1]
                stopped = not last.passed
                if sar_variant == "always" or (
                    sar_variant == "auto" and stopped and _authorization_bound(last)
                ):
                    api_cpu = last.cpu_percent.get("apiserver", 0)
                    adapter_cpu = last.cpu_percent.get("adapter", 0)
                    why = (
                        "requested"
                        if sar_variant == "always"
                        else f"because where the {name} ramp stopped, SubjectAccessReviews ran at "
                        f"{last.sars_per_second:.0f}/s (the adapter's authorization client "
                        f"allows {SAR_CLIENT_QPS:.0f}/s) and the fake kube-apiserver used "
                        f"{api_cpu:.0f}% of a core (adapter {adapter_cpu:.0f}%)"
                    )
                    result.notes.append(
                        f"fleet: also ran {name}+sar-1m ({SAR_TTL_FLAG}=1m): {why}. With the "
                        "default 10 s SAR cache and 15 s syncs, each Object-metric HPA (its own "
                        "object name) and each namespace's pods/* and external-metric access "
                        "costs a SubjectAccessReview every sync"
                    )
                    log(result.notes[-1])
                    planned.insert(0, (f"{name}+sar-1m", (*flags, *VARIANTS["sar-1m"])))
    return result


def _opt(value: int | None) -> str:
    return "-" if value is None else str(value)


def fleet_tables(result: FleetResult) -> str:
    out = [
        f"HPA fleet: up to {result.max_hpas:,} HPAs ({result.hpas_per_namespace} per namespace, "
        f"{result.namespaces} namespaces), {result.pods:,} pods, {result.services:,} services, "
        f"{result.queues:,} queues, {result.series:,} series scraped every "
        f"{result.scrape_interval}; sync period {result.period_seconds:g} s, "
        f"{result.warmup_periods} warm-up + {result.periods} measured periods per step; a step "
        f"passes with no errors, p99 <= {result.p99_limit_ms:g} ms and load-generator lateness "
        f"p99 <= {result.lateness_limit_ms:g} ms. CPU in % of one core.\n"
    ]
    for fleet_run in result.runs:
        out.append(
            f"### Fleet: {fleet_run.variant} "
            f"({' '.join(fleet_run.adapter_flags) or 'default flags'})\n"
        )
        out.append(
            markdown_table(
                (
                    "HPAs",
                    "target req/s",
                    "req/s",
                    "p50 ms",
                    "p99 ms",
                    "max ms",
                    "p99 pods/object/external ms",
                    "late p99 ms",
                    "errors",
                    "adapter CPU %",
                    "adapter RSS MB",
                    "apiserver CPU %",
                    "Prom CPU %",
                    "loadgen CPU %",
                    "other CPU %",
                    "machine CPU %",
                    "SAR/s",
                    "Prom q/s",
                    "loop stalls > 50/250 ms",
                    "relists",
                    "verdict",
                ),
                [
                    (
                        f"{s.hpas:,}",
                        fmt(s.target_rps, 0),
                        fmt(s.achieved_rps, 0),
                        fmt(s.p50_ms, 1),
                        fmt(s.p99_ms, 1),
                        fmt(s.max_ms, 0),
                        "/".join(fmt(s.p99_ms_by_kind.get(k), 1) for k in KINDS),
                        fmt(s.late_p99_ms, 1),
                        s.errors,
                        fmt(s.cpu_percent.get("adapter"), 0),
                        fmt(s.adapter_rss_mb, 0),
                        fmt(s.cpu_percent.get("apiserver"), 0),
                        fmt(s.cpu_percent.get("prometheus"), 0),
                        fmt(s.cpu_percent.get("loadgen"), 0),
                        fmt(s.cpu_percent.get("other"), 0),
                        fmt(s.cpu_percent.get("machine"), 0),
                        fmt(s.sars_per_second, 0),
                        fmt(s.prometheus_queries_per_second, 0),
                        f"{_opt(s.loop_stalls_over_50ms)}/{_opt(s.loop_stalls_over_250ms)}",
                        _opt(s.relists),
                        s.verdict,
                    )
                    for s in fleet_run.steps
                ],
            )
        )
        out.append(
            f"\nlargest N sustained: **{fleet_run.largest_sustained:,}**; stopped: "
            f"{fleet_run.stop_reason}; adapter start-up {fleet_run.startup_seconds:.2f} s, idle "
            f"RSS {fleet_run.idle_rss_mb:.1f} MB\n\nat the last step: {fleet_run.bottleneck}\n"
        )
        out.extend(f"note: {note}\n" for note in fleet_run.notes)
    out.extend(f"note: {note}\n" for note in result.notes)
    return "\n".join(out)


async def _main(args: argparse.Namespace) -> None:
    result = await measure_fleet(
        steps=[int(s) for s in args.steps.split(",")],
        variants=[v for v in args.variants.split(",") if v],
        sar_variant=args.sar_variant,
        period=args.period,
        periods=args.periods,
        warmup_periods=args.warmup_periods,
        hpas_per_namespace=args.hpas_per_namespace,
        scrape_interval=args.scrape_interval,
    )
    machine = describe_machine()
    print(
        f"\nmachine: {machine['cores']} cores ({machine['cpu_model']}), Python "
        f"{machine['python']}, {machine['prometheus']}, load generator loop "
        f"{type(asyncio.get_running_loop()).__module__}\n"
    )
    print(fleet_tables(result))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--steps", default=",".join(str(s) for s in DEFAULT_STEPS))
    parser.add_argument("--variants", default="default,ttl", help=", ".join(VARIANTS))
    parser.add_argument("--sar-variant", choices=("auto", "always", "never"), default="auto")
    parser.add_argument("--period", type=float, default=15.0, help="HPA sync period, seconds")
    parser.add_argument("--periods", type=int, default=2, help="measured periods per step")
    parser.add_argument("--warmup-periods", type=int, default=1)
    parser.add_argument("--hpas-per-namespace", type=int, default=50)
    parser.add_argument("--scrape-interval", default="10s")
    cli_args = parser.parse_args()
    run(lambda: _main(cli_args))
