"""The test harness itself, end to end: it works, and it can fail.

Prometheus and kubectl are the real binaries; the exporter's data is deterministic, so every
number Prometheus returns is checked exactly (or to floating-point rounding).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import math
import os
import re
import signal
import ssl
import subprocess
import sys
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from harness import packages
from harness.exporter import (
    ContainerSpec,
    CounterSpec,
    Dataset,
    Exporter,
    GaugeSpec,
    PodSpec,
    demo_dataset,
    format_value,
    running_exporter,
    synthetic_dataset,
)
from harness.kubectl import kubectl_get_raw, write_kubeconfig
from harness.pki import CertificateAuthority
from harness.ports import free_port, wait_for_http
from harness.prometheus import PrometheusError, PrometheusProcess
from harness.recording_proxy import LOGIN_PAGE, running_recording_proxy

REPO = Path(__file__).resolve().parents[2]


def _obtain(ensure: Callable[[], str]) -> str | None:
    # Installs the Debian package when running as root; None when it cannot be had.
    try:
        return ensure()
    except RuntimeError:
        return None


PROMETHEUS = _obtain(packages.ensure_prometheus)
KUBECTL = _obtain(packages.ensure_kubectl)
needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus missing: apt-get install prometheus (as root)"
)
needs_kubectl = pytest.mark.skipif(
    KUBECTL is None, reason="kubectl missing: apt-get install kubernetes-client (as root)"
)
# Tests sharing the module's Prometheus run in the module's event loop.
module_loop = pytest.mark.asyncio(loop_scope="module")

# The demo data plus a rate that is no binary fraction, a counter of our own, and the special
# gauge values the text format allows.
DATASET = replace(
    demo_dataset(),
    pods=(
        *demo_dataset().pods,
        PodSpec("other", "odd-0", 1 / 3, labels={"container": "app"}, memory_bytes=1e9),
    ),
    gauges=(
        *demo_dataset().gauges,
        GaugeSpec("special_value", {"kind": "nan"}, math.nan),
        GaugeSpec("special_value", {"kind": "inf"}, math.inf),
        GaugeSpec("special_value", {"kind": "neg_inf"}, -math.inf),
    ),
    counters=(CounterSpec("jobs_processed_total", {"queue": "orders"}, 0.125),),
)
RATES = {pod.name: pod.request_rate for pod in DATASET.pods}
REL = 1e-6


def relative_error(value: float, expected: float) -> float:
    return abs(value / expected - 1)


def by_label(result: list[dict[str, Any]], label: str) -> dict[str, float]:
    return {item["metric"][label]: float(item["value"][1]) for item in result}


# ---------------------------------------------------------------------------------------------
# ports


def test_free_port_is_bindable() -> None:
    import socket  # noqa: PLC0415

    port = free_port()
    assert 0 < port < 65536
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


async def test_wait_for_http_times_out_with_last_error() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"not ready after 0.3s: .*(Connect|refused)"):
        await wait_for_http(f"http://127.0.0.1:{port}/", timeout=0.3)
    assert time.monotonic() - started < 2


async def test_wait_for_http_custom_ok_and_status_in_error() -> None:
    async with running_exporter(DATASET) as exporter:
        await wait_for_http(exporter.metrics_url, timeout=5)
        await wait_for_http(f"{exporter.url}/nothing", timeout=5, ok=lambda status: status == 404)
        with pytest.raises(TimeoutError, match="HTTP 404"):
            await wait_for_http(f"{exporter.url}/nothing", timeout=0.2)


# ---------------------------------------------------------------------------------------------
# packages


def test_ensure_debian_package_finds_installed_binary() -> None:
    assert packages.ensure_debian_package("sh", "dash").endswith("/sh")


def test_ensure_debian_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # Not root: nothing is installed, and the error names the package.
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(RuntimeError, match="install the Debian package 'no-such-package'"):
        packages.ensure_debian_package("no-such-binary-harness", "no-such-package")


@needs_prometheus
def test_ensure_prometheus_gives_a_runnable_binary() -> None:
    binary = packages.ensure_prometheus()
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    assert "prometheus, version" in version.stdout + version.stderr


# ---------------------------------------------------------------------------------------------
# exporter


def test_format_value_is_exact() -> None:
    assert format_value(math.nan) == "NaN"
    assert format_value(math.inf) == "+Inf"
    assert format_value(-math.inf) == "-Inf"
    assert format_value(0.1) == "0.1"
    assert format_value(3) == "3.0"
    assert format_value(1e16) == "1e+16"
    assert format_value(1 / 3) == "0.3333333333333333"
    for value in (1 / 3, 2**-30, 123456789.123456789, 5e-324, 1.7976931348623157e308):
        assert float(format_value(value)) == value


async def test_exporter_output_parses_with_exact_values() -> None:
    clock_value = 1_700_000_123.999
    async with (
        running_exporter(DATASET, clock=lambda: clock_value) as exporter,
        aiohttp.ClientSession() as session,
        session.get(exporter.metrics_url) as reply,
    ):
        assert reply.status == 200
        assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await reply.text()
    assert exporter.scrapes == 1
    # Timestamps are rounded down to the second; values are rate * (t - start).
    expected = {(item.name, item.labels): item.value_at(1_700_000_123) for item in DATASET.series()}
    seen: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            assert sample.timestamp == 1_700_000_123
            key = (sample.name, tuple(sample.labels.items()))
            seen[key] = sample.value
            types[sample.name] = family.type
    assert seen.keys() == expected.keys()
    for key, value in expected.items():
        assert seen[key] == value or (math.isnan(value) and math.isnan(seen[key])), key
    assert (
        seen[("http_requests_total", (("namespace", "demo"), ("pod", "web-1"), ("service", "web")))]
        == 1_700_000_123.0
    )
    assert types["http_requests_total"] == "counter"
    assert types["queue_depth"] == "gauge"
    assert 'special_value{kind="inf"} +Inf 1700000123000\n' in text
    assert 'special_value{kind="nan"} NaN 1700000123000\n' in text
    assert (
        'http_requests_total{namespace="other",pod="odd-0",container="app"} 566666707.6666666 1700000123000\n'
        in text
    )


@needs_prometheus
def test_promtool_accepts_exporter_output() -> None:
    text = DATASET.render(1_700_000_000_000)
    promtool = str(Path(packages.ensure_prometheus()).with_name("promtool"))
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    # Prometheus 2.42 cannot switch linting off; node-exporter's real names are camelCase.
    problems = [line for line in (result.stdout + result.stderr).splitlines() if line]
    assert all(
        re.fullmatch(
            r"node_memory_\w+ metric names should be written in 'snake_case' not 'camelCase'", line
        )
        for line in problems
    ), problems
    assert result.returncode in (0, 3)


async def test_exporter_counters_grow_at_the_configured_rate() -> None:
    now = [1_700_000_000.0]
    async with running_exporter(DATASET, clock=lambda: now[0]) as exporter:

        async def scrape() -> dict[str, tuple[float, float]]:
            async with (
                aiohttp.ClientSession() as session,
                session.get(exporter.metrics_url) as reply,
            ):
                text = await reply.text()
            return {
                sample.labels["pod"]: (float(sample.timestamp or 0), sample.value)
                for family in text_string_to_metric_families(text)
                for sample in family.samples
                if sample.name == "http_requests_total"
            }

        first = await scrape()
        now[0] += 7.25
        second = await scrape()
    for pod, rate in RATES.items():
        (t1, v1), (t2, v2) = first[pod], second[pod]
        assert t2 - t1 == 7  # rounded down to whole seconds
        assert relative_error((v2 - v1) / (t2 - t1), rate) < REL
        if rate in (0.5, 1.0, 2.0):
            assert (v2 - v1) / (t2 - t1) == rate


def test_exporter_millisecond_resolution() -> None:
    exporter = Exporter(DATASET, clock=lambda: 1_700_000_000.12345, resolution_ms=1)
    text = exporter.render()
    value = format_value(2.0 * 1_700_000_000.123)
    line = (
        f'http_requests_total{{namespace="demo",pod="web-2",service="web"}} {value} 1700000000123'
    )
    assert line + "\n" in text


def test_datasets() -> None:
    demo = demo_dataset()
    assert [(pod.namespace, pod.name, pod.request_rate) for pod in demo.pods] == [
        ("demo", "web-0", 0.5),
        ("demo", "web-1", 1.0),
        ("demo", "web-2", 2.0),
    ]
    names = {item.name for item in demo.series()}
    assert {
        "http_requests_total",
        "queue_depth",
        "queue_consumer_lag",
        "memory_usage_bytes",
        "container_cpu_usage_seconds_total",
        "container_memory_working_set_bytes",
        "node_cpu_seconds_total",
        "node_memory_MemTotal_bytes",
        "node_memory_MemAvailable_bytes",
    } <= names
    big = synthetic_dataset(1000, 10)
    assert len(big.pods) == 1000
    assert len({pod.namespace for pod in big.pods}) == 10
    assert len({(pod.namespace, pod.name) for pod in big.pods}) == 1000
    text = big.render(1_700_000_000_000)
    assert text.count("\nhttp_requests_total{") == 1000
    pod = PodSpec("ns", "p", 1.0, containers=(ContainerSpec("c", cpu_cores=0.5),))
    assert [item.name for item in Dataset(pods=(pod,)).series()] == [
        "http_requests_total",
        "container_cpu_usage_seconds_total",
        "container_memory_working_set_bytes",
    ]


def test_openmetrics_history() -> None:
    dataset = Dataset(pods=(PodSpec("ns", "p", 0.5, labels={"service": 'a"b'}),))
    history = dataset.openmetrics_history(100, 102, extra_labels={"job": "j", "instance": "i:1"})
    assert history == (
        'http_requests_total{namespace="ns",pod="p",service="a\\"b",job="j",instance="i:1"} 50.0 100\n'
        'http_requests_total{namespace="ns",pod="p",service="a\\"b",job="j",instance="i:1"} 50.5 101\n'
        'http_requests_total{namespace="ns",pod="p",service="a\\"b",job="j",instance="i:1"} 51.0 102\n'
        "# EOF\n"
    )
    with pytest.raises(ValueError, match="bad history range"):
        dataset.openmetrics_history(10, 5)


async def _wait_for_line(
    stream: asyncio.StreamReader, pattern: str, timeout: float
) -> re.Match[str]:
    async with asyncio.timeout(timeout):
        while True:
            line = (await stream.readline()).decode()
            if not line:
                raise AssertionError(f"process ended before printing {pattern!r}")
            match = re.search(pattern, line)
            if match:
                return match


@contextlib.asynccontextmanager
async def _cli(*args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """A harness CLI as a separate process; killed if the test fails before it ends."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        *args,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_exporter_cli_serves_until_sigterm() -> None:
    port = free_port()
    async with _cli(
        "harness.exporter", "--port", str(port), "--pods", "50", "--namespaces", "5"
    ) as process:
        assert process.stdout is not None
        await _wait_for_line(process.stdout, rf"serving http://127.0.0.1:{port}/metrics", 20)
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/metrics") as reply,
        ):
            text = await reply.text()
        assert text.count("\nhttp_requests_total{") == 50
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0
    with pytest.raises(TimeoutError):
        await wait_for_http(f"http://127.0.0.1:{port}/metrics", timeout=0.2)


# ---------------------------------------------------------------------------------------------
# Prometheus scraping the exporter (one server for these tests: its first scrape comes ~5 s
# after start, as Prometheus 2.42 applies target updates every 5 s)


@dataclass
class Scraped:
    prometheus: PrometheusProcess
    seconds: Exporter  # whole-second timestamps, as the brief's exporter
    millis: Exporter  # millisecond timestamps
    live_time: float  # a scraped (not backfilled) sample time of ``seconds``


async def _first_live_sample(
    prometheus: PrometheusProcess, exporter: Exporter, after: int
) -> float:
    query = f'timestamp(http_requests_total{{instance="{exporter.target}",pod="web-0"}})'
    result = await prometheus.wait_for_query(
        query, lambda r: bool(r) and float(r[0]["value"][1]) >= after, timeout=30
    )
    return float(result[0]["value"][1])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def scraped() -> AsyncIterator[Scraped]:
    async with (
        running_exporter(DATASET) as seconds,
        running_exporter(DATASET, resolution_ms=1) as millis,
    ):
        prometheus = PrometheusProcess([seconds.target, millis.target])
        now = int(time.time())
        # Four minutes of the same data as history, so that [1m] and [3m] ranges are full now.
        prometheus.backfill = "".join(
            DATASET.openmetrics_history(
                now - 240, now - 1, extra_labels=prometheus.target_labels(exporter.target), eof=last
            )
            for exporter, last in ((seconds, False), (millis, True))
        )
        async with prometheus:
            live_time = await _first_live_sample(prometheus, seconds, now)
            await _first_live_sample(prometheus, millis, now)
            yield Scraped(prometheus, seconds, millis, live_time)


@needs_prometheus
@module_loop
async def test_prometheus_rate_equals_configured_rate(scraped: Scraped) -> None:
    prometheus, target, at = scraped.prometheus, scraped.seconds.target, scraped.live_time
    # The window holds backfilled and scraped samples, every one exactly as the exporter says.
    window = await prometheus.query(f'http_requests_total{{instance="{target}"}}[1m]', time=at)
    for series in window:
        pod = series["metric"]["pod"]
        times = [float(t) for t, _ in series["values"]]
        assert times[0] == at - 60
        assert times[-1] == at
        for t, value in series["values"]:
            assert float(value) == RATES[pod] * float(t), (pod, t)
    rates = by_label(
        await prometheus.query(f'rate(http_requests_total{{instance="{target}"}}[1m])', time=at),
        "pod",
    )
    assert rates.keys() == RATES.keys()
    for pod, rate in RATES.items():
        assert relative_error(rates[pod], rate) < REL, (pod, rates[pod])
    # The dyadic rates come out exact; 1/3 to the last bits.
    assert rates["web-0"] == 0.5
    assert rates["web-2"] == 2.0


@needs_prometheus
@module_loop
async def test_prometheus_rate_now_with_millisecond_timestamps(scraped: Scraped) -> None:
    # Evaluated at "now", as the adapter queries: exact only when sample timestamps are the
    # scrape times. Whole-second timestamps can end the window up to 2 s early, and rate()
    # then extrapolates by half an interval only (errors up to ~2.5% at [1m]).
    prometheus, exporter = scraped.prometheus, scraped.millis
    await exporter.wait_for_scrapes(exporter.scrapes + 1, timeout=10)
    query = f'rate(http_requests_total{{instance="{exporter.target}"}}[1m])'
    rates = by_label(await prometheus.query(query), "pod")
    for pod, rate in RATES.items():
        assert relative_error(rates[pod], rate) < REL, (pod, rates[pod])


@needs_prometheus
@module_loop
async def test_prometheus_resource_series(scraped: Scraped) -> None:
    prometheus, target, at = scraped.prometheus, scraped.seconds.target, scraped.live_time
    match = f'instance="{target}"'
    cpu = by_label(
        await prometheus.query(
            f'sum by (pod) (rate(container_cpu_usage_seconds_total{{container!="",{match}}}[3m]))',
            time=at,
        ),
        "pod",
    )
    assert {pod: round(value, 9) for pod, value in cpu.items()} == {
        "web-0": 0.125,
        "web-1": 0.25,
        "web-2": 0.5,
    }
    nodes = by_label(
        await prometheus.query(
            f'sum by (node) (rate(node_cpu_seconds_total{{mode!="idle",{match}}}[3m]))', time=at
        ),
        "node",
    )
    assert {node: round(value, 9) for node, value in nodes.items()} == {
        "node-a": 1.5,
        "node-b": 0.5,
    }
    memory = by_label(
        await prometheus.query(
            f"node_memory_MemTotal_bytes{{{match}}} - node_memory_MemAvailable_bytes{{{match}}}",
            time=at,
        ),
        "node",
    )
    assert memory == {"node-a": 3 * 2**30, "node-b": 2**30}


@needs_prometheus
@module_loop
async def test_prometheus_gauges_exact(scraped: Scraped) -> None:
    prometheus, target = scraped.prometheus, scraped.seconds.target
    depth = await prometheus.query(f'queue_depth{{instance="{target}"}}')
    assert {item["metric"]["topic"]: item["value"][1] for item in depth} == {
        "orders": "42",
        "payments": "7.5",
    }
    special = await prometheus.query(f'special_value{{instance="{target}"}}')
    assert {item["metric"]["kind"]: item["value"][1] for item in special} == {
        "nan": "NaN",
        "inf": "+Inf",
        "neg_inf": "-Inf",
    }
    memory = by_label(await prometheus.query(f'memory_usage_bytes{{instance="{target}"}}'), "pod")
    assert memory == {
        "web-0": 100 * 2**20,
        "web-1": 150 * 2**20,
        "web-2": 200 * 2**20,
        "odd-0": 1e9,
    }
    series = await prometheus.wait_for_series('{__name__="queue_consumer_lag"}', count=4, timeout=5)
    assert {(s["name"], s["instance"]) for s in series} == {
        (name, exporter.target)
        for name in ("orders", "payments")
        for exporter in (scraped.seconds, scraped.millis)
    }


@needs_prometheus
@module_loop
async def test_prometheus_query_log_records_queries(scraped: Scraped) -> None:
    prometheus = scraped.prometheus
    query = f"sum(queue_depth) * 0 + {time.time_ns()}"
    assert query not in prometheus.query_log()
    await prometheus.query(query)
    # Prometheus writes the entry before it answers.
    assert prometheus.query_log()[-1] == query


@needs_prometheus
@module_loop
async def test_prometheus_wait_helpers_time_out(scraped: Scraped) -> None:
    prometheus = scraped.prometheus
    with pytest.raises(TimeoutError, match="1 series for no_such_metric: 0 series"):
        await prometheus.wait_for_series("no_such_metric", timeout=0.3)
    with pytest.raises(TimeoutError, match=r"vector\(1\): last result"):
        await prometheus.wait_for_query("vector(1)", lambda result: False, timeout=0.3)
    with pytest.raises(PrometheusError, match="bad_data"):
        await prometheus.query("rate(")


@needs_prometheus
@module_loop
async def test_recording_proxy_in_front_of_prometheus(scraped: Scraped) -> None:
    prometheus = scraped.prometheus
    query = f'sum(http_requests_total{{pod="web-1"}}) * 0 + {time.time_ns()}'
    async with (
        running_recording_proxy(prometheus.url) as proxy,
        aiohttp.ClientSession() as session,
        session.post(
            f"{proxy.url}/api/v1/query?stats=all",
            data={"query": query},
            headers={"X-Scope-OrgID": "tenant-1"},
        ) as reply,
    ):
        assert reply.status == 200
        body = await reply.json()
    assert body["status"] == "success"
    assert prometheus.query_log()[-1] == query  # it really reached Prometheus
    [recorded] = proxy.requests
    assert (recorded.method, recorded.path, recorded.query) == (
        "POST",
        "/api/v1/query",
        [("stats", "all")],
    )
    assert recorded.headers["X-Scope-OrgID"] == "tenant-1"
    assert recorded.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert urllib.parse.parse_qs(recorded.body.decode()) == {"query": [query]}
    assert recorded.status == 200


@needs_prometheus
@module_loop
async def test_recording_proxy_max_url_length(scraped: Scraped) -> None:
    prometheus = scraped.prometheus
    long_query = "sum(queue_depth) + " + " + ".join(["0"] * 200)
    async with (
        running_recording_proxy(prometheus.url, max_url_length=300) as proxy,
        aiohttp.ClientSession() as session,
    ):
        async with session.get(f"{proxy.url}/api/v1/query", params={"query": long_query}) as reply:
            assert reply.status == 414
        async with session.get(
            f"{proxy.url}/api/v1/query", params={"query": "sum(queue_depth)"}
        ) as reply:
            assert reply.status == 200
    assert [r.status for r in proxy.requests] == [414, 200]
    assert len(proxy.requests[0].raw_path) > 300
    assert proxy.requests[0].query == [("query", long_query)]
    assert long_query not in prometheus.query_log()  # refused, not forwarded


# ---------------------------------------------------------------------------------------------
# Prometheus on its own


@needs_prometheus
async def test_prometheus_stop_and_restart_keep_data() -> None:
    async with (
        running_exporter(DATASET) as exporter,
        PrometheusProcess([exporter.target]) as prometheus,
    ):
        port, pid = prometheus.port, prometheus.pid
        assert pid is not None
        sample_time = await _first_live_sample(prometheus, exporter, 0)
        before = await prometheus.query("http_requests_total", time=sample_time)
        assert len(before) == len(RATES)
        await exporter.stop()  # no new samples: what is there after the restart was kept

        await prometheus.stop()
        assert not prometheus.running
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        with pytest.raises(TimeoutError, match="Connect"):
            await wait_for_http(f"{prometheus.url}/-/ready", timeout=0.3)
        await prometheus.stop()  # idempotent

        await prometheus.restart()
        assert (prometheus.port, prometheus.running) == (port, True)
        assert prometheus.pid != pid
        after = await prometheus.query("http_requests_total", time=sample_time)
        assert sorted(after, key=str) == sorted(before, key=str)
    assert not prometheus.running
    assert not prometheus.workdir.exists()


@needs_prometheus
async def test_prometheus_route_prefix(tmp_path: Path) -> None:
    prometheus = PrometheusProcess(route_prefix="prom/", workdir=tmp_path / "prom")
    now = int(time.time())
    prometheus.backfill = DATASET.openmetrics_history(
        now - 120, now - 1, extra_labels=prometheus.target_labels("backfill:1")
    )
    async with prometheus:
        assert prometheus.url == f"http://127.0.0.1:{prometheus.port}/prom"
        await wait_for_http(f"{prometheus.url}/-/ready", timeout=5)
        root = f"http://127.0.0.1:{prometheus.port}"
        await wait_for_http(
            f"{root}/api/v1/query?query=1", timeout=5, ok=lambda status: status == 404
        )
        lag = by_label(await prometheus.query("queue_consumer_lag"), "name")
        assert lag == {"orders": 1250.0, "payments": 0.0}
        # The proxy adds the upstream's path: clients talk to it as to an unprefixed server.
        async with (
            running_recording_proxy(prometheus.url) as proxy,
            aiohttp.ClientSession() as session,
            session.get(f"{proxy.url}/api/v1/series", params={"match[]": "queue_depth"}) as reply,
        ):
            assert reply.status == 200
            assert len((await reply.json())["data"]) == 2
        assert proxy.requests[0].path == "/api/v1/series"
    assert (tmp_path / "prom" / "prometheus.log").exists()  # a given workdir is kept


@needs_prometheus
async def test_prometheus_start_failure_shows_log() -> None:
    prometheus = PrometheusProcess(extra_args=["--no-such-flag"])
    started = time.monotonic()
    with pytest.raises(
        PrometheusError, match=r"exited with status \d+ while starting(.|\n)*no-such-flag"
    ):
        await prometheus.start()
    assert time.monotonic() - started < 10
    assert not prometheus.running
    await prometheus.close()


@needs_prometheus
async def test_prometheus_stop_cancelled_still_kills() -> None:
    prometheus = PrometheusProcess()
    await prometheus.start()
    try:
        stopping = asyncio.create_task(prometheus.stop())
        await asyncio.sleep(0)  # let it send SIGTERM and start waiting
        stopping.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stopping
        assert not prometheus.running
    finally:
        await prometheus.close()


@contextlib.contextmanager
def _child_subreaper() -> Iterator[None]:
    """Adopt orphaned descendants (PID 1 here does not reap them), to reap them ourselves."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_child_subreaper = 36
    if prctl(pr_set_child_subreaper, 1, 0, 0, 0) != 0:
        pytest.skip("PR_SET_CHILD_SUBREAPER not available")
    try:
        yield
    finally:
        prctl(pr_set_child_subreaper, 0, 0, 0, 0)


async def _reap(pid: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"process {pid} outlived its parent by {timeout}s")
        await asyncio.sleep(0.05)


@needs_prometheus
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux prctl")
async def test_prometheus_cli_stops_prometheus(tmp_path: Path) -> None:
    # SIGTERM: the CLI stops Prometheus and exits 0.
    port = free_port()
    async with _cli(
        "harness.prometheus", "--port", str(port), "--workdir", str(tmp_path / "a")
    ) as cli:
        assert cli.stdout is not None
        ready = await _wait_for_line(cli.stdout, r"ready at (\S+) \(pid (\d+)\)", 30)
        assert ready[1] == f"http://127.0.0.1:{port}"
        await wait_for_http(f"{ready[1]}/-/ready", timeout=5)
        cli.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(cli.wait(), 15) == 0
    assert not Path(f"/proc/{ready[2]}").exists()

    # SIGKILL: nobody cleans up but the kernel, which sends Prometheus SIGTERM (pdeathsig).
    with _child_subreaper():
        async with _cli("harness.prometheus", "--workdir", str(tmp_path / "b")) as cli:
            assert cli.stdout is not None
            ready = await _wait_for_line(cli.stdout, r"ready at (\S+) \(pid (\d+)\)", 30)
            cli.kill()
            await cli.wait()
        status = await _reap(int(ready[2]), 15)
    assert os.waitstatus_to_exitcode(status) == 0  # a clean shutdown on SIGTERM


# ---------------------------------------------------------------------------------------------
# recording proxy against a small upstream


@contextlib.asynccontextmanager
async def _echo_server() -> AsyncIterator[str]:
    async def echo(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "method": request.method,
                "path_qs": request.path_qs,
                "headers": dict(request.headers),
                "body": (await request.read()).decode(),
            },
            headers={"X-Upstream": "yes"},
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/base"
    finally:
        await runner.cleanup()


async def test_recording_proxy_forwards_and_records() -> None:
    async with (
        _echo_server() as upstream,
        running_recording_proxy(upstream) as proxy,
        aiohttp.ClientSession() as session,
        session.put(
            f"{proxy.url}/api/v1/query?a=1&a=2&b=x%20y",
            data=b"\x00binary body",
            headers={"Authorization": "Bearer t0k", "Connection": "keep-alive", "TE": "trailers"},
        ) as reply,
    ):
        assert reply.status == 200
        assert reply.headers["X-Upstream"] == "yes"
        seen = await reply.json()
    assert seen["method"] == "PUT"
    assert seen["path_qs"] == "/base/api/v1/query?a=1&a=2&b=x%20y"
    assert seen["headers"]["Authorization"] == "Bearer t0k"
    assert "TE" not in seen["headers"]
    assert seen["body"] == "\x00binary body"
    [recorded] = proxy.requests
    assert recorded.method == "PUT"
    assert recorded.path == "/api/v1/query"
    assert recorded.query == [("a", "1"), ("a", "2"), ("b", "x y")]
    assert recorded.raw_path == "/api/v1/query?a=1&a=2&b=x%20y"
    assert recorded.headers["Authorization"] == "Bearer t0k"
    assert recorded.headers["TE"] == "trailers"  # recorded as received
    assert recorded.body == b"\x00binary body"


async def test_recording_proxy_html_error_and_upstream_down() -> None:
    async with (
        running_recording_proxy("http://127.0.0.1:9", html_error=True) as proxy,
        aiohttp.ClientSession() as session,
    ):
        async with session.get(f"{proxy.url}/api/v1/query?query=up") as reply:
            assert reply.status == 200
            assert reply.content_type == "text/html"
            assert await reply.text() == LOGIN_PAGE == "<html><body>Login</body></html>"
        assert proxy.requests[0].query == [("query", "up")]
    # Port 9 (discard) has no listener here: a real upstream that is down.
    async with (
        running_recording_proxy(f"http://127.0.0.1:{free_port()}") as proxy,
        aiohttp.ClientSession() as session,
        session.get(f"{proxy.url}/api/v1/query") as reply,
    ):
        assert reply.status == 502
    assert proxy.requests[0].status == 502


# ---------------------------------------------------------------------------------------------
# kubectl


@dataclass
class Tls:
    ca_file: Path
    context: ssl.SSLContext


def _make_tls(directory: Path, name: str) -> Tls:
    """A CA and a server certificate for 127.0.0.1 signed by it."""
    ca = CertificateAuthority(f"harness test CA {name}")
    cert_file, key_file = ca.issue_server(["127.0.0.1"]).write(directory, f"{name}-server")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return Tls(ca.write(directory, f"{name}-ca"), context)


API_BODY = '{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"custom.metrics.k8s.io/v1beta2","resources":[]}'


@contextlib.asynccontextmanager
async def _api_server(
    tls: ssl.SSLContext | None,
) -> AsyncIterator[tuple[str, list[tuple[str, dict[str, str]]], asyncio.Event]]:
    """A tiny API server: one resource list, 404 elsewhere, and /hang that never answers.

    It records (path, headers) of every request. The kubectl of Google's Debian repository
    (the one this machine image ships) is a dispatcher that first asks ``/version`` to pick a
    kubectl matching the server; Debian's kubernetes-client asks the path only.
    """
    seen: list[tuple[str, dict[str, str]]] = []
    release = asyncio.Event()

    async def handle(request: web.Request) -> web.Response:
        seen.append((request.path, dict(request.headers)))
        if request.path == "/apis/custom.metrics.k8s.io/v1beta2":
            return web.Response(text=API_BODY, content_type="application/json")
        if request.path == "/hang":
            await release.wait()
        return web.json_response(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "reason": "NotFound",
                "code": 404,
            },
            status=404,
        )

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    scheme = "https" if tls else "http"
    try:
        yield f"{scheme}://127.0.0.1:{runner.addresses[0][1]}", seen, release
    finally:
        release.set()
        await runner.cleanup()


def test_write_kubeconfig(tmp_path: Path) -> None:
    import yaml  # noqa: PLC0415

    path = write_kubeconfig(
        tmp_path / "config", "https://127.0.0.1:6443", insecure=True, token="abc"
    )
    config = yaml.safe_load(path.read_text())
    assert config["current-context"] == "adapter"
    assert config["clusters"][0]["cluster"] == {
        "server": "https://127.0.0.1:6443",
        "insecure-skip-tls-verify": True,
    }
    assert config["users"][0]["user"] == {"token": "abc"}
    assert path.stat().st_mode & 0o077 == 0
    with pytest.raises(ValueError, match="not both"):
        write_kubeconfig(tmp_path / "x", "https://h", ca_file="ca.crt", insecure=True)


@needs_kubectl
async def test_kubectl_get_raw_https_with_ca_and_token(tmp_path: Path) -> None:
    tls = _make_tls(tmp_path, "good")
    async with _api_server(tls.context) as (server, seen, _):
        config = write_kubeconfig(
            tmp_path / "kubeconfig", server, ca_file=str(tls.ca_file), token="s3cret"
        )
        code, out, err = await kubectl_get_raw(
            "/apis/custom.metrics.k8s.io/v1beta2", kubeconfig=config
        )
        assert (code, out.strip(), err) == (0, API_BODY, "")
        path, headers = seen[-1]
        assert path == "/apis/custom.metrics.k8s.io/v1beta2"
        assert headers["Authorization"] == "Bearer s3cret"
        assert "kubectl" in headers["User-Agent"]

        # Failures are reported, not hidden: 404, and a server the CA did not sign.
        code, out, err = await kubectl_get_raw("/apis/nothing", kubeconfig=config)
        assert code != 0
        assert "NotFound" in err or "not found" in err.lower()
        other = _make_tls(tmp_path, "other")
        wrong = write_kubeconfig(
            tmp_path / "wrong", server, ca_file=str(other.ca_file), token="s3cret"
        )
        code, out, err = await kubectl_get_raw(
            "/apis/custom.metrics.k8s.io/v1beta2", kubeconfig=wrong
        )
        assert code != 0
        assert "certificate" in err


@needs_kubectl
async def test_kubectl_get_raw_insecure_and_http(tmp_path: Path) -> None:
    tls = _make_tls(tmp_path, "self")
    async with _api_server(tls.context) as (server, _, _):
        # Over TLS, kubectl wants credentials: without any it prompts for a username.
        config = write_kubeconfig(tmp_path / "insecure", server, insecure=True, token="t")
        code, out, _ = await kubectl_get_raw(
            "/apis/custom.metrics.k8s.io/v1beta2", kubeconfig=config
        )
        assert (code, out.strip()) == (0, API_BODY)
    async with _api_server(None) as (server, _, _):
        config = write_kubeconfig(tmp_path / "http", server)
        code, out, _ = await kubectl_get_raw(
            "/apis/custom.metrics.k8s.io/v1beta2", kubeconfig=config
        )
        assert (code, out.strip()) == (0, API_BODY)


@needs_kubectl
async def test_kubectl_get_raw_timeout_kills_kubectl(tmp_path: Path) -> None:
    async with _api_server(None) as (server, seen, _):
        config = write_kubeconfig(tmp_path / "kubeconfig", server)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await kubectl_get_raw("/hang", kubeconfig=config, timeout=1.0)
        assert time.monotonic() - started < 5
        assert [path for path, _ in seen if path != "/version"] == ["/hang"]
    leftover = subprocess.run(
        ["pgrep", "-f", f"kubeconfig={config}"], capture_output=True, check=False
    )
    assert leftover.stdout == b""
