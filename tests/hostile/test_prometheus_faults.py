"""A faulty Prometheus: the real adapter process (no-cluster mode, config/demo.yaml) in front
of a real Prometheus with the demo data, through harness/fault_proxy.py, which refuses
connections, answers late, answers HTML, cuts bodies off, sends huge answers, error
envelopes with a 200, and garbage.

Each fault must give the request a clear Status (a 5xx: the upstream failed) and a log line
naming the cause, never a traceback, and the adapter must recover by itself once the fault
clears. A huge answer must not stall the event loop (the adapter's own lag probe) nor keep
its memory; one over --prometheus-max-response-size must fail with the limit in the log.

The custom metrics provider answers every Prometheus failure with Go's words, "unable to
fetch metrics": the cause is in the log, not in the Status.
"""

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from harness.adapter import AdapterProcess
from harness.exporter import demo_dataset, running_exporter
from harness.fault_proxy import Fault, FaultProxy, running_fault_proxy
from harness.prometheus import PrometheusProcess

pytestmark = pytest.mark.asyncio(loop_scope="module")

REPO = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO / "config" / "demo.yaml"
CUSTOM = "/apis/custom.metrics.k8s.io/v1beta2"
WEB_0 = f"{CUSTOM}/namespaces/demo/pods/web-0/memory_usage_bytes"
PODS = f"{CUSTOM}/namespaces/demo/pods/*/memory_usage_bytes"
TIMEOUT = 1.5  # --prometheus-timeout: the slow fault waits a little longer
LIMIT = "32Mi"  # --prometheus-max-response-size's default (given in bytes below)
LIMIT_BYTES = 32 << 20
HUGE = 25_000_000
UNABLE = "Internal error occurred: unable to fetch metrics"


@dataclass
class Rig:
    adapter: AdapterProcess
    proxy: FaultProxy
    session: aiohttp.ClientSession

    @property
    def pid(self) -> int:
        assert self.adapter.process is not None
        return self.adapter.process.pid

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.session.get(
            self.adapter.url + path, ssl=self.adapter.ssl_context()
        ) as response:
            body = await response.read()
            is_json = response.content_type == "application/json"
            return response.status, orjson.loads(body) if is_json else body.decode()

    def log_since(self, mark: int) -> str:
        return self.adapter.log()[mark:]

    def status_mb(self, field: str) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
        raise KeyError(field)

    async def lag_buckets(self) -> dict[str, float]:
        """The adapter's event-loop lag histogram: cumulative counts by `le`, and "count"."""
        _, text = await self.get("/metrics")
        buckets: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "prometheus_adapter_event_loop_lag_seconds_bucket":
                    buckets[sample.labels["le"]] = sample.value
                elif sample.name == "prometheus_adapter_event_loop_lag_seconds_count":
                    buckets["count"] = sample.value
        return buckets

    async def relists(self, result: str) -> float:
        _, text = await self.get("/metrics")
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "prometheus_adapter_relist_total" and sample.labels == {
                    "result": result
                }:
                    return sample.value
        return 0.0


async def until(condition: Callable[[], Any], what: str, timeout: float = 10) -> None:
    """Poll `condition` (sync or async) until it holds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"after {timeout}s: {what}")
        await asyncio.sleep(0.05)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rig() -> AsyncIterator[Rig]:
    dataset = demo_dataset()
    async with (
        running_exporter(dataset) as exporter,
        PrometheusProcess([exporter.target]) as prometheus,
        running_fault_proxy(prometheus.url) as proxy,
        aiohttp.ClientSession() as session,
    ):
        proxy.huge_namespace = "demo"
        proxy.huge_pods = tuple(pod.name for pod in dataset.pods)
        adapter = AdapterProcess(
            DEMO_CONFIG,
            proxy.url,
            [f"--prometheus-timeout={TIMEOUT}s", f"--prometheus-max-response-size={LIMIT_BYTES}"],
        )
        try:
            await prometheus.wait_for_series("memory_usage_bytes", count=len(dataset.pods))
            await adapter.start()
            rig = Rig(adapter, proxy, session)

            async def served() -> bool:
                return (await rig.get(WEB_0))[0] == 200

            await until(served, "the adapter serves web-0's memory_usage_bytes")
            yield rig
        finally:
            await adapter.close()


def assert_unable_to_fetch(status: int, body: Any) -> None:
    """The Status the custom metrics provider gives for any Prometheus failure (Go's)."""
    assert status == 500, body
    assert isinstance(body, dict), body
    assert (body["kind"], body["status"], body["code"]) == ("Status", "Failure", 500), body
    assert body["message"] == UNABLE, body


def assert_logged_once(log: str, cause: str) -> str:
    """The one line naming the cause; no traceback."""
    assert "Traceback" not in log, log
    lines = [line for line in log.splitlines() if cause in line]
    assert len(lines) == 1, (cause, log)
    return lines[0]


@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        (Fault.HTML_200, "bad_response: response body is not JSON ("),
        (Fault.HTML_502, "bad_response: unknown response code 502 (Bad Gateway)"),
        (
            Fault.TRUNCATED_LENGTH,
            "connection: ConnectionResetError: the connection closed mid-response",
        ),
        (
            Fault.TRUNCATED_CHUNKED,
            "connection: ConnectionResetError: the connection closed mid-response",
        ),
        (Fault.ERROR_JSON_200, "execution: query processing would load too many samples"),
        (Fault.NOT_JSON, "bad_response: response body is not JSON ("),
        (Fault.SLOW, f"timeout: no response within {TIMEOUT:g}s"),
    ],
    ids=lambda value: value.value if isinstance(value, Fault) else "cause",
)
async def test_a_fault_is_a_clear_status_and_then_the_adapter_recovers(
    rig: Rig, fault: Fault, cause: str
) -> None:
    rig.proxy.fault = fault
    rig.proxy.delay = TIMEOUT + 0.5
    mark = len(rig.adapter.log())
    try:
        status, body = await rig.get(WEB_0)
    finally:
        rig.proxy.fault = Fault.NONE
    assert_unable_to_fetch(status, body)
    line = assert_logged_once(rig.log_since(mark), cause)
    assert "unable to fetch metrics from prometheus" in line
    assert f"GET {rig.proxy.url}/api/v1/query)" in line  # where, without the query string
    status, body = await rig.get(WEB_0)
    assert status == 200, body
    assert body["items"][0]["describedObject"]["name"] == "web-0"


async def test_a_huge_answer_keeps_the_loop_responsive_and_its_memory_is_returned(
    rig: Rig,
) -> None:
    rig.proxy.huge = HUGE
    rig.proxy.huge_shape = "cadvisor"  # all of a container series' labels, ~600 bytes each
    rig.proxy.huge_body()  # made now, not while the adapter is measured
    baseline = rig.status_mb("VmRSS")
    with contextlib.suppress(OSError):  # "5": reset the peak RSS (VmHWM), Linux 4.0+
        Path(f"/proc/{rig.pid}/clear_refs").write_text("5")
    lag_before = await rig.lag_buckets()
    healthz: list[float] = []
    done = asyncio.Event()

    async def probe_healthz() -> None:
        while not done.is_set():
            started = time.perf_counter()
            status, _ = await rig.get("/healthz")
            healthz.append(time.perf_counter() - started)
            assert status == 200

    prober = asyncio.create_task(probe_healthz())
    rig.proxy.fault = Fault.HUGE
    try:
        status, body = await rig.get(PODS)
    finally:
        rig.proxy.fault = Fault.NONE
        done.set()
        await prober
    assert status == 200, body
    assert {item["describedObject"]["name"] for item in body["items"]} == {
        "web-0",
        "web-1",
        "web-2",
    }
    [answer] = rig.proxy.huge_answers[-1:]
    assert answer.sent == answer.size > HUGE and not answer.client_closed
    # No loop stall over 50 ms: every lag probe fell in the 50 ms bucket.
    lag_after = await rig.lag_buckets()
    probes = lag_after["count"] - lag_before["count"]
    late = probes - (lag_after["0.05"] - lag_before["0.05"])
    assert probes > 0 and late == 0, (lag_before, lag_after)
    assert len(healthz) > 5 and max(healthz) < 0.25, sorted(healthz)[-5:]
    # Memory: the answer is parsed as it arrives (the peak is a few times the answer, not
    # the ~8 times of reading it whole), and given back once done with.
    assert rig.status_mb("VmHWM") - baseline < 3.2 * HUGE / 2**20
    await until(lambda: rig.status_mb("VmRSS") < baseline + 40, "RSS back near its baseline")


async def test_an_answer_over_the_limit_fails_naming_the_limit(rig: Rig) -> None:
    rig.proxy.huge = HUGE
    rig.proxy.huge_shape = "cadvisor"
    rig.proxy.huge_body()
    baseline = rig.status_mb("VmRSS")
    mark = len(rig.adapter.log())
    rig.proxy.fault = Fault.ENDLESS  # samples until the adapter hangs up
    try:
        status, body = await rig.get(WEB_0)
    finally:
        rig.proxy.fault = Fault.NONE
    assert_unable_to_fetch(status, body)
    line = assert_logged_once(rig.log_since(mark), f"--prometheus-max-response-size={LIMIT}")
    assert re.search(
        rf"too_large: the answer is larger than --prometheus-max-response-size={LIMIT} "
        rf"\({LIMIT_BYTES} bytes\); stopped reading at \d+ bytes and closed the connection "
        rf"\(HTTP 200 from GET {re.escape(rig.proxy.url)}/api/v1/query\)",
        line,
    ), line
    # The adapter stopped reading and hung up: the proxy wrote little more than the limit
    # (what the sockets' buffers took).
    [answer] = rig.proxy.huge_answers[-1:]
    assert answer.finished is not None
    await asyncio.wait_for(answer.finished.wait(), 5)
    assert answer.client_closed and LIMIT_BYTES < answer.sent < 2 * LIMIT_BYTES
    await until(lambda: rig.status_mb("VmRSS") < baseline + 40, "RSS back near its baseline")
    status, body = await rig.get(WEB_0)
    assert status == 200, body


async def test_prometheus_down_keeps_the_last_discovery_and_recovers(rig: Rig) -> None:
    failures = await rig.relists("failure")
    await rig.proxy.go_down()
    try:
        mark = len(rig.adapter.log())
        status, body = await rig.get(WEB_0)
        assert_unable_to_fetch(status, body)
        log = rig.log_since(mark)
        assert "Traceback" not in log
        assert "unable to fetch metrics from prometheus: connection: " in log
        assert "Connect call failed" in log or "Connection refused" in log, log

        async def relist_failed() -> bool:
            return await rig.relists("failure") > failures

        await until(relist_failed, "a relist against the refused Prometheus")
        status, discovery = await rig.get(CUSTOM)
        assert status == 200
        names = {resource["name"] for resource in discovery["resources"]}
        assert "pods/memory_usage_bytes" in names  # the last good discovery
    finally:
        await rig.proxy.come_up()
    status, body = await rig.get(WEB_0)  # the very next request
    assert status == 200, body
