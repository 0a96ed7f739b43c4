"""Live config reload under load, against a real Prometheus: no failed requests, new metrics
discoverable within a second, a broken config leaves the old one serving."""

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml

from harness.adapter import AdapterProcess
from harness.exporter import demo_dataset
from harness.prometheus import PrometheusProcess
from tests.integration.conftest import DEMO_CONFIG, scraping_prometheus

pytestmark = pytest.mark.asyncio(loop_scope="module")

POD_METRIC = (
    "/apis/custom.metrics.k8s.io/v1beta2/namespaces/demo/pods/web-1/http_requests_per_second"
)


def write_atomically(path: Path, config: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(config))
    os.replace(tmp, path)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def prometheus() -> AsyncIterator[PrometheusProcess]:
    async with scraping_prometheus(demo_dataset()) as process:
        yield process


async def test_reload_under_load(prometheus: PrometheusProcess, tmp_path: Path) -> None:
    full = yaml.safe_load(DEMO_CONFIG.read_text())
    first = {"rules": [full["rules"][0]]}  # only the request-rate rule, no external rules
    config = tmp_path / "config.yaml"
    write_atomically(config, first)
    adapter = AdapterProcess(config, prometheus.url, relist_interval="60s")
    failures: list[str] = []
    served = 0
    stop = asyncio.Event()

    async def load(session: aiohttp.ClientSession) -> None:
        nonlocal served
        while not stop.is_set():
            async with session.get(adapter.url + POD_METRIC) as response:
                if response.status != 200:
                    failures.append(f"{response.status} {await response.text()}")
                served += 1

    async def resources(session: aiohttp.ClientSession, path: str) -> set[str]:
        async with session.get(adapter.url + path) as response:
            if response.status != 200:
                return set()
            return {r["name"] for r in (await response.json())["resources"]}

    async def discoverable(
        session: aiohttp.ClientSession, path: str, name: str, timeout: float
    ) -> float:
        started = time.monotonic()
        while name not in await resources(session, path):
            assert time.monotonic() - started < timeout, f"{name} not in {path} after {timeout}s"
            await asyncio.sleep(0.02)
        return time.monotonic() - started

    try:
        await adapter.start()
        assert adapter.process is not None
        connector = aiohttp.TCPConnector(ssl=adapter.ssl_context())
        async with aiohttp.ClientSession(connector=connector) as session:
            workers = [asyncio.create_task(load(session)) for _ in range(4)]
            custom = "/apis/custom.metrics.k8s.io/v1beta2"
            assert "pods/memory_usage_bytes" not in await resources(session, custom)

            # SIGHUP: the new rule's metrics are discoverable within a second.
            write_atomically(config, {"rules": full["rules"]})
            adapter.process.send_signal(signal.SIGHUP)
            assert await discoverable(session, custom, "pods/memory_usage_bytes", 1.0) < 1.0

            # A file change alone (a ConfigMap update) is noticed too, and serves a new group.
            write_atomically(config, full)
            await discoverable(session, "/apis/external.metrics.k8s.io/v1beta1", "queue_depth", 5.0)

            # A broken config: the old one keeps serving; the failure shows in /metrics.
            config.write_text("rules:\n- seriesQuery: x\n  metricQuery: y\n")
            adapter.process.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 5
            metrics_text = ""
            while (
                'prometheus_adapter_config_reloads_total{result="failure"} 1.0' not in metrics_text
            ):
                assert time.monotonic() < deadline, metrics_text
                async with session.get(adapter.url + "/metrics") as response:
                    metrics_text = await response.text()
                await asyncio.sleep(0.05)
            assert "prometheus_adapter_config_last_reload_successful 0.0" in metrics_text
            assert "pods/memory_usage_bytes" in await resources(session, custom)
            async with session.get(adapter.url + "/readyz") as response:
                assert response.status == 200
            stop.set()
            await asyncio.gather(*workers)
        assert served > 50
        assert failures == []
        log = adapter.log()
        assert "rules[0].metricQuery" in log and "the previous config stays in use" in log
    finally:
        stop.set()
        await adapter.close()
