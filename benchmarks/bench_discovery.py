"""Discovery benchmark: the adapter's relist at 10k, 100k and 1M series in a real Prometheus.

Run from the repository root: `python benchmarks/bench_discovery.py [--sizes 10000,100000]
[--cache-dir DIR]`. For each size it writes a cluster-shaped series set (harness.series_data:
cAdvisor, application, kube-state-metrics and node series, about a hundred metric names) as
OpenMetrics, turns it into TSDB blocks with promtool, starts a real Prometheus on them, and:

1. times the raw `/api/v1/series` call of each distinct `seriesQuery` of the Helm chart's
   default rules (config/helm-default-rules.yaml), sequentially, reading the whole body
   uncompressed (as curl would): what Prometheus itself costs; the best of two passes;
2. runs the adapter as its own process (`--no-cluster`, the Helm rules) with a short relist
   interval, lets it do its first relist and two more, and reads its `/metrics`
   (`prometheus_adapter_relist_duration_seconds`, `prometheus_adapter_registered_metrics`,
   `prometheus_adapter_event_loop_lag_seconds`) and `/proc/<pid>` (VmHWM, VmRSS, CPU time).

The series' two samples lie 120 s and 60 s before generation; the adapter runs with a
`--metrics-max-age` of at least 10 minutes that keeps covering them for 15 minutes (the run
fails rather than report relists that saw fewer series), and with `--prometheus-timeout=10m`
(the Go adapter has no timeout; the default 10 s is shorter than Prometheus' own time at 1M
series). With `--cache-dir`, the blocks are kept (keyed on size and the generator's format
version) and reused for up to 6 hours, the max age growing to cover their age.

On 2 cores, 1M series take about 3 minutes end to end: 3 s to write the OpenMetrics file
(1 GB), 60 s of promtool (4 GB RSS), 30 s of raw series calls, the rest relists; with the
blocks cached, about 1.5 minutes.

"stalls over 50 ms" counts event-loop lag probes that fired more than 50 ms late over the
adapter's whole life (start-up and every relist). Numbers only; nothing is asserted.
Everything it starts, it stops; temporary data is removed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import ssl
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from adapter.naming.rules import load_rules  # noqa: E402
from harness.adapter import AdapterProcess  # noqa: E402
from harness.prometheus import PrometheusProcess, create_blocks  # noqa: E402
from harness.series_data import FORMAT_VERSION, write_openmetrics  # noqa: E402

__all__ = ["DiscoveryResult", "format_table", "main", "measure_discovery"]

CONFIG = REPO / "config" / "helm-default-rules.yaml"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SIZES = (10_000, 100_000, 1_000_000)
SAMPLE_AGES = (120, 60)  # seconds before generation
MIN_MAX_AGE = 600  # --metrics-max-age, seconds, at least
WINDOW_MARGIN = 900  # seconds the max-age window must keep covering the samples
CACHE_MAX_AGE = 6 * 3600  # cached blocks older than this are made anew
PROMETHEUS_TIMEOUT = "10m"
_NAME_KEY = b'"__name__":'  # once in every series of a /api/v1/series answer
_GO_REFERENCE = {10_000: (0.28, 74), 100_000: (2.0, 172)}  # the Go adapter: seconds, peak MB


@dataclass(frozen=True)
class DiscoveryResult:
    series: int  # series in Prometheus matched by the Helm rules' queries
    metrics: int  # custom metrics discovered
    prometheus_seconds: float  # raw /api/v1/series time (sum over the distinct queries)
    first_relist_seconds: float
    relist_seconds: float  # mean of the later relists
    peak_rss_mb: float  # VmHWM
    steady_rss_mb: float  # VmRSS after the relists
    cpu_seconds_per_relist: float
    stalls_over_50ms: int | None
    # Beyond the suite's interface (defaults keep the constructor compatible):
    ready_rss_mb: float = math.nan  # VmRSS just after the first relist
    generate_seconds: float = 0.0  # writing the OpenMetrics file (0 when cached)
    backfill_seconds: float = 0.0  # promtool (0 when cached)
    prometheus_start_seconds: float = 0.0
    prometheus_peak_rss_mb: float = math.nan
    total_seconds: float = 0.0  # this size, end to end


# --- /proc -------------------------------------------------------------------------------


def process_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_status_mb(pid: int, field: str) -> float:
    """``VmRSS``, ``VmHWM``, ... of /proc/<pid>/status, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise KeyError(f"{field} not in /proc/{pid}/status")


# --- data --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Data:
    blocks: Path  # TSDB blocks holding the series
    expected_series: int  # of them, those the Helm rules' queries select
    oldest_sample: int  # Unix time
    generate_seconds: float
    backfill_seconds: float


def _backfill_timeout(size: int) -> float:
    # promtool takes ~60 s per million series on a 2-core machine; leave room for a busy one.
    return 120 + size * 600 / 1_000_000


def _cached(entry: Path, size: int, now: int) -> dict[str, int] | None:
    try:
        info: dict[str, int] = json.loads((entry / "info.json").read_text())
        valid = (
            info["format_version"] == FORMAT_VERSION
            and info["size"] == size
            and now - info["oldest_sample"] < CACHE_MAX_AGE
            and (entry / "blocks").is_dir()
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info if valid else None


async def _prepare_data(
    size: int, tmp: Path, cache_dir: Path | None, log: Callable[[str], None]
) -> _Data:
    """TSDB blocks holding ``size`` selected series: from the cache, or made now."""
    now = int(time.time())
    entry = cache_dir / f"v{FORMAT_VERSION}-{size}" if cache_dir is not None else None
    if entry is not None and (info := _cached(entry, size, now)) is not None:
        log(f"{size}: cached blocks from {now - info['created']} s ago")
        return _Data(entry / "blocks", info["matched"], info["oldest_sample"], 0.0, 0.0)

    times = [now - age for age in SAMPLE_AGES]
    source = tmp / "series.om"
    began = time.perf_counter()
    counts = await asyncio.to_thread(write_openmetrics, source, size, times)
    generated = time.perf_counter() - began
    log(
        f"{size}: wrote {counts.total} series ({counts.matched} selected, "
        f"{counts.metric_names} names, {source.stat().st_size / 1e6:.0f} MB) in {generated:.1f} s"
    )
    began = time.perf_counter()
    if entry is None:
        blocks = tmp / "blocks"
        await create_blocks(source, blocks, timeout=_backfill_timeout(size))
    else:
        entry.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}-", dir=entry.parent))
        try:
            await create_blocks(source, staging / "blocks", timeout=_backfill_timeout(size))
            info = {
                "format_version": FORMAT_VERSION,
                "size": size,
                "matched": counts.matched,
                "total": counts.total,
                "oldest_sample": min(times),
                "created": now,
            }
            (staging / "info.json").write_text(json.dumps(info))
            await asyncio.to_thread(shutil.rmtree, entry, True)
            staging.rename(entry)
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, True)
        blocks = entry / "blocks"
    backfilled = time.perf_counter() - began
    source.unlink()
    log(f"{size}: promtool made the blocks in {backfilled:.1f} s")
    return _Data(blocks, counts.matched, min(times), generated, backfilled)


# --- measuring ---------------------------------------------------------------------------


async def _raw_series(
    session: aiohttp.ClientSession, url: str, query: str, start: int
) -> tuple[int, float]:
    """(series, seconds) of one `/api/v1/series` call, the body read to the end."""
    began = time.perf_counter()
    async with session.get(
        f"{url}/api/v1/series",
        params={"match[]": query, "start": str(start)},
        headers={"Accept-Encoding": "identity"},
    ) as response:
        count = 0
        tail = b""
        head = b""
        async for chunk in response.content.iter_chunked(1 << 20):
            if len(head) < 64:
                head += chunk[:64]
            data = tail + chunk
            count += data.count(_NAME_KEY)
            tail = data[-(len(_NAME_KEY) - 1) :]
        seconds = time.perf_counter() - began
    if response.status != 200 or not head.startswith(b'{"status":"success"'):
        raise RuntimeError(f"GET /api/v1/series {query}: HTTP {response.status}: {head!r}")
    return count, seconds


async def _measure_prometheus(url: str, queries: Sequence[str], start: int) -> tuple[int, float]:
    """Series the queries select, and the sum of their best-of-two sequential times."""
    timeout = aiohttp.ClientTimeout(total=None, sock_read=600)
    async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session:
        series = 0
        seconds = 0.0
        for query in queries:
            first = await _raw_series(session, url, query, start)
            second = await _raw_series(session, url, query, start)
            if first[0] != second[0]:
                raise RuntimeError(f"{query}: {first[0]} series, then {second[0]}")
            series += first[0]
            seconds += min(first[1], second[1])
    return series, seconds


@dataclass(frozen=True)
class _Scrape:
    relists: int
    relist_sum: float
    failures: int
    custom_metrics: int
    stalls: int | None
    cpu: float  # adapter CPU seconds when scraped


async def _scrape(
    session: aiohttp.ClientSession, adapter: AdapterProcess, pid: int, tls: ssl.SSLContext
) -> _Scrape:
    async with session.get(f"{adapter.url}/metrics", ssl=tls) as response:
        text = await response.text()
        if response.status != 200:
            raise RuntimeError(f"adapter /metrics: HTTP {response.status}: {text[:200]}")
    cpu = process_cpu_seconds(pid)
    values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    lag_count = values.get(("prometheus_adapter_event_loop_lag_seconds_count", ()))
    lag_fast = values.get(("prometheus_adapter_event_loop_lag_seconds_bucket", (("le", "0.05"),)))
    stalls = None if lag_count is None or lag_fast is None else round(lag_count - lag_fast)
    return _Scrape(
        relists=round(values.get(("prometheus_adapter_relist_duration_seconds_count", ()), 0)),
        relist_sum=values.get(("prometheus_adapter_relist_duration_seconds_sum", ()), 0.0),
        failures=round(
            values.get(("prometheus_adapter_relist_total", (("result", "failure"),)), 0)
        ),
        custom_metrics=round(
            values.get(("prometheus_adapter_registered_metrics", (("api", "custom"),)), 0)
        ),
        stalls=stalls,
        cpu=cpu,
    )


async def _wait_for_relists(
    session: aiohttp.ClientSession,
    adapter: AdapterProcess,
    pid: int,
    tls: ssl.SSLContext,
    count: int,
    *,
    poll: float,
    timeout: float,
) -> _Scrape:
    """Scrape `/metrics` every `poll` s until `count` relists are done; fail on a failed one."""
    deadline = time.monotonic() + timeout
    while True:
        process = adapter.process
        if process is None or process.returncode is not None:
            raise RuntimeError(f"the adapter exited:\n{adapter.log()[-3000:]}")
        scrape = await _scrape(session, adapter, pid, tls)
        if scrape.failures:
            raise RuntimeError(f"a relist failed:\n{adapter.log()[-3000:]}")
        if scrape.relists >= count:
            return scrape
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{scrape.relists} of {count} relists after {timeout:g} s:\n{adapter.log()[-3000:]}"
            )
        await asyncio.sleep(poll)


async def _measure_adapter(
    prometheus_url: str,
    workdir: Path,
    *,
    size: int,
    max_age: int,
    relist_interval: float,
    relists: int,
) -> tuple[_Scrape, _Scrape, float, float, float]:
    """(after the first relist, after the last, ready RSS, peak RSS, steady RSS)."""
    workdir.mkdir(parents=True, exist_ok=True)
    adapter = AdapterProcess(
        CONFIG,
        prometheus_url,
        [
            f"--metrics-max-age={max_age}s",
            f"--prometheus-timeout={PROMETHEUS_TIMEOUT}",
            "--v=4",  # the shipped manifests' verbosity
        ],
        workdir=workdir,
        relist_interval=f"{relist_interval:g}s",
    )
    relist_timeout = 120 + size * 600 / 1_000_000
    poll = min(0.25, relist_interval / 4)
    try:
        await adapter.start(wait_ready=False, timeout=60)
        assert adapter.process is not None
        pid = adapter.process.pid
        # One keep-alive connection (one TLS context: aiohttp pools connections by context):
        # a scrape costs the adapter well under a millisecond, no handshake.
        tls = adapter.ssl_context()
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector) as session:
            first = await _wait_for_relists(
                session, adapter, pid, tls, 1, poll=poll, timeout=relist_timeout
            )
            ready_rss = process_status_mb(pid, "VmRSS")
            last = await _wait_for_relists(
                session,
                adapter,
                pid,
                tls,
                first.relists + relists - 1,
                poll=poll,
                timeout=relist_timeout * relists + relist_interval * relists,
            )
        peak = process_status_mb(pid, "VmHWM")
        steady = process_status_mb(pid, "VmRSS")
        return first, last, ready_rss, peak, steady
    finally:
        await adapter.close()


async def _measure_size(
    size: int,
    tmp: Path,
    *,
    cache_dir: Path | None,
    relists: int,
    relist_interval: float | None,
    log: Callable[[str], None],
) -> DiscoveryResult:
    began = time.perf_counter()
    queries = list(dict.fromkeys(rule.series_query for rule in load_rules(CONFIG).rules))
    data = await _prepare_data(size, tmp, cache_dir, log)
    prometheus = PrometheusProcess(workdir=tmp / "prometheus", blocks=data.blocks, retention="1d")
    try:
        started = time.perf_counter()
        await prometheus.start(timeout=120)
        startup = time.perf_counter() - started
        log(f"{size}: Prometheus ready in {startup:.1f} s (pid {prometheus.pid})")
        now = int(time.time())
        max_age = max(MIN_MAX_AGE, now - data.oldest_sample + WINDOW_MARGIN)
        series, prometheus_seconds = await _measure_prometheus(
            prometheus.url, queries, now - max_age
        )
        if series != data.expected_series:
            raise RuntimeError(
                f"Prometheus has {series} series for the rules' queries, "
                f"{data.expected_series} were written"
            )
        log(f"{size}: raw /api/v1/series: {series} series in {prometheus_seconds:.3f} s")
        interval = relist_interval if relist_interval is not None else (2 if size <= 100_000 else 5)
        first, last, ready_rss, peak, steady = await _measure_adapter(
            prometheus.url,
            tmp / "adapter",
            size=size,
            max_age=max_age,
            relist_interval=interval,
            relists=relists,
        )
        newest_sample = data.oldest_sample + max(SAMPLE_AGES) - min(SAMPLE_AGES)
        if time.time() - max_age > newest_sample:
            raise RuntimeError(
                "the samples left the --metrics-max-age window during the run: the later "
                "relists saw fewer series, and their numbers are not valid"
            )
        prometheus_peak = math.nan
        if prometheus.pid is not None:
            prometheus_peak = process_status_mb(prometheus.pid, "VmHWM")
    finally:
        await prometheus.close()
    later = last.relists - first.relists
    result = DiscoveryResult(
        series=series,
        metrics=last.custom_metrics,
        prometheus_seconds=prometheus_seconds,
        first_relist_seconds=first.relist_sum / first.relists,
        relist_seconds=(last.relist_sum - first.relist_sum) / later,
        peak_rss_mb=peak,
        steady_rss_mb=steady,
        cpu_seconds_per_relist=(last.cpu - first.cpu) / later,
        stalls_over_50ms=last.stalls,
        ready_rss_mb=ready_rss,
        generate_seconds=data.generate_seconds,
        backfill_seconds=data.backfill_seconds,
        prometheus_start_seconds=startup,
        prometheus_peak_rss_mb=prometheus_peak,
        total_seconds=time.perf_counter() - began,
    )
    log(f"{size}: {result}")
    return result


async def measure_discovery(
    sizes: Sequence[int] = SIZES,
    *,
    workdir: Path | None = None,
    cache_dir: Path | None = None,
    relists: int = 3,
    relist_interval: float | None = None,
    log: Callable[[str], None] | None = None,
) -> list[DiscoveryResult]:
    """Measure discovery at each size (series the Helm rules select), one after the other.

    Temporary data goes to a directory made under ``workdir`` (default: the system's), removed
    at the end. ``cache_dir`` keeps the TSDB blocks for later runs. ``relists`` (>= 2) is the
    first relist plus those averaged; ``relist_interval`` defaults to 2 s up to 100k series
    and 5 s above. ``log`` receives progress lines.
    """
    if relists < 2:
        raise ValueError("relists must be at least 2: the first, and those averaged")
    say = log if log is not None else (lambda _line: None)
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    results: list[DiscoveryResult] = []
    for size in sizes:
        tmp = Path(tempfile.mkdtemp(prefix=f"bench-discovery-{size}-", dir=workdir))
        try:
            results.append(
                await _measure_size(
                    size,
                    tmp,
                    cache_dir=cache_dir,
                    relists=relists,
                    relist_interval=relist_interval,
                    log=say,
                )
            )
        finally:
            await asyncio.to_thread(shutil.rmtree, tmp, True)
    return results


def format_table(results: Sequence[DiscoveryResult]) -> str:
    def stalls(value: int | None) -> str:
        return "n/a" if value is None else str(value)

    header = (
        f"{'series':>9} {'metrics':>7} {'prom s':>7} {'first s':>8} {'relist s':>8} "
        f"{'peak MB':>8} {'steady MB':>9} {'CPU s/rl':>8} {'stalls':>6} {'ready MB':>8}  "
        f"{'gen s':>6} {'promtool s':>10} {'prom up s':>9} {'prom MB':>8} {'total s':>8}"
    )
    lines = [header]
    for r in results:
        lines.append(
            f"{r.series:>9} {r.metrics:>7} {r.prometheus_seconds:>7.3f} "
            f"{r.first_relist_seconds:>8.3f} {r.relist_seconds:>8.3f} {r.peak_rss_mb:>8.1f} "
            f"{r.steady_rss_mb:>9.1f} {r.cpu_seconds_per_relist:>8.3f} "
            f"{stalls(r.stalls_over_50ms):>6} {r.ready_rss_mb:>8.1f}  "
            f"{r.generate_seconds:>6.1f} {r.backfill_seconds:>10.1f} "
            f"{r.prometheus_start_seconds:>9.1f} {r.prometheus_peak_rss_mb:>8.0f} "
            f"{r.total_seconds:>8.1f}"
        )
    lines.append("")
    lines.append(
        "prom s: raw /api/v1/series, best of 2, summed over the distinct queries; "
        "first s / relist s: the adapter's first relist / mean of the later ones; "
        "stalls: event-loop lag > 50 ms over the adapter's life; ready MB: RSS after the "
        "first relist; prom MB: Prometheus' peak RSS."
    )
    go = ", ".join(
        f"{size:,} series: {seconds} s, {mb} MB peak"
        for size, (seconds, mb) in _GO_REFERENCE.items()
    )
    lines.append(f"Go adapter: {go}.")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument(
        "--sizes",
        default=",".join(str(size) for size in SIZES),
        help="comma-separated series counts (default: %(default)s)",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="for temporary data")
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="keep the TSDB blocks here for later runs"
    )
    parser.add_argument("--relists", type=int, default=3, help="first relist + those averaged")
    parser.add_argument(
        "--relist-interval", type=float, default=None, help="seconds (default: by size)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    sizes = [int(size.replace("_", "")) for size in args.sizes.split(",") if size.strip()]

    def progress(line: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)

    results = asyncio.run(
        measure_discovery(
            sizes,
            workdir=args.workdir,
            cache_dir=args.cache_dir,
            relists=args.relists,
            relist_interval=args.relist_interval,
            log=None if args.quiet else progress,
        )
    )
    print(format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
