"""The adapter against Prometheus in bad states and behind other front doors: stopped and
restarted, an HTML-answering proxy, a path prefix, POST, extra headers and a bearer token."""

import asyncio
import signal
import time
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from harness.adapter import AdapterProcess, running_adapter
from harness.exporter import Exporter, demo_dataset, running_exporter
from harness.prometheus import PrometheusProcess
from harness.recording_proxy import running_recording_proxy
from tests.integration.conftest import DEMO_CONFIG, wait_for_rates

pytestmark = pytest.mark.asyncio(loop_scope="module")

POD_METRIC = (
    "/apis/custom.metrics.k8s.io/v1beta2/namespaces/demo/pods/web-1/http_requests_per_second"
)
DISCOVERY = "/apis/custom.metrics.k8s.io/v1beta2"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def exporter() -> AsyncIterator[Exporter]:
    async with running_exporter(demo_dataset()) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def prometheus(exporter: Exporter) -> AsyncIterator[PrometheusProcess]:
    process = PrometheusProcess([exporter.target])
    try:
        await process.start()
        await wait_for_rates(process, 3)
        yield process
    finally:
        await process.close()


async def fetch(adapter: AdapterProcess, path: str) -> tuple[int, Any]:
    """Status and body (decoded JSON, or the text of a plain-text answer such as /readyz)."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(adapter.url + path, ssl=adapter.ssl_context()) as response,
    ):
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


async def test_prometheus_stopped_then_restarted(prometheus: PrometheusProcess) -> None:
    async with running_adapter(DEMO_CONFIG, prometheus.url, ["--prometheus-timeout=3s"]) as adapter:
        status, body = await fetch(adapter, POD_METRIC)
        assert status == 200
        await prometheus.stop()
        try:
            started = time.monotonic()
            status, body = await fetch(adapter, POD_METRIC)
            assert time.monotonic() - started < 3 + 1  # within the request timeout
            assert status == 500
            assert body["message"] == "Internal error occurred: unable to fetch metrics"
            # Discovery keeps its last list while Prometheus is gone, across failed relists.
            await asyncio.sleep(1.5)
            status, body = await fetch(adapter, DISCOVERY)
            assert status == 200
            assert "pods/http_requests_per_second" in {r["name"] for r in body["resources"]}
            status, _ = await fetch(adapter, "/readyz")
            assert status == 200
        finally:
            await prometheus.restart()
        # Recovers by itself: requests succeed again once Prometheus is back.
        await wait_for_rates(prometheus, 3)
        deadline = time.monotonic() + 20
        while (
            status := (await fetch(adapter, POD_METRIC))[0]
        ) != 200 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert status == 200
        assert "unable to list series" in adapter.log()


async def test_html_answering_backend(prometheus: PrometheusProcess) -> None:
    async with (
        running_recording_proxy(prometheus.url, html_error=True) as proxy,
        running_adapter(DEMO_CONFIG, proxy.url, wait_ready=False) as adapter,
    ):
        # Discovery cannot succeed, so the adapter is alive but never ready.
        await adapter.wait_for("/livez")
        status, _ = await fetch(adapter, "/readyz")
        assert status == 500
        status, _ = await fetch(
            adapter, "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/queue_depth"
        )
        assert status == 404  # nothing discovered
        for _ in range(100):
            if "not JSON" in adapter.log():
                break
            await asyncio.sleep(0.05)
        assert "not JSON" in adapter.log()


async def test_path_prefix(exporter: Exporter) -> None:
    process = PrometheusProcess([exporter.target], route_prefix="/prom")
    try:
        await process.start()
        await wait_for_rates(process, 3)
        assert process.url.endswith("/prom")
        async with running_adapter(DEMO_CONFIG, process.url + "/") as adapter:
            status, body = await fetch(adapter, POD_METRIC)
            assert status == 200
            assert body["items"][0]["value"] == "1"
    finally:
        await process.close()


async def test_post_headers_and_rotating_token(
    prometheus: PrometheusProcess, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first-token\n")
    async with running_recording_proxy(prometheus.url) as proxy:
        flags = [
            "--prometheus-verb=POST",
            "--prometheus-header=X-Scope-OrgID=tenant-a",
            f"--prometheus-token-file={token_file}",
        ]
        async with running_adapter(DEMO_CONFIG, proxy.url, flags) as adapter:
            status, _ = await fetch(adapter, POD_METRIC)
            assert status == 200
            queries = [r for r in proxy.requests if r.path.endswith("/api/v1/query")]
            assert queries, [r.path for r in proxy.requests]
            last = queries[-1]
            assert last.method == "POST"
            assert last.headers["Content-Type"] == "application/x-www-form-urlencoded"
            form = dict(urllib.parse.parse_qsl(last.body.decode()))
            assert (
                form["query"]
                == 'sum(irate(http_requests_total{namespace="demo",pod="web-1"}[1m])) by (pod)'
            )
            assert last.headers["Authorization"] == "Bearer first-token"
            assert last.headers["X-Scope-Orgid"] == "tenant-a"
            series = [r for r in proxy.requests if r.path.endswith("/api/v1/series")]
            assert series and all(r.method == "POST" for r in series)
            assert all(r.headers.get("Authorization") == "Bearer first-token" for r in series)

            token_file.write_text("second-token\n")
            status, _ = await fetch(adapter, POD_METRIC)
            assert status == 200
            assert proxy.requests[-1].headers["Authorization"] == "Bearer second-token"
            assert "first-token" not in adapter.log() and "second-token" not in adapter.log()


async def test_graceful_shutdown(prometheus: PrometheusProcess) -> None:
    adapter = AdapterProcess(DEMO_CONFIG, prometheus.url, ["--shutdown-delay-duration=2s"])
    try:
        await adapter.start()
        assert adapter.process is not None
        process = adapter.process
        process.send_signal(signal.SIGTERM)
        # Readiness fails at once; the server keeps serving during the delay.
        deadline = time.monotonic() + 1.5
        while (await fetch(adapter, "/readyz"))[0] != 500 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert (await fetch(adapter, "/readyz"))[0] == 500
        assert (await fetch(adapter, "/livez"))[0] == 200
        assert (await fetch(adapter, POD_METRIC))[0] == 200
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0
        assert "closing the listener" in adapter.log()
    finally:
        await adapter.close()
