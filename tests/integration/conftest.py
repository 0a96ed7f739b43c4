"""A real stack for the integration tests: the demo exporter, a real Prometheus scraping it,
the adapter as its own process over HTTPS, and a kubeconfig for the real kubectl."""

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest_asyncio

from harness.adapter import AdapterProcess
from harness.exporter import Exporter, demo_dataset, running_exporter
from harness.kubectl import kubectl_get_raw, write_kubeconfig
from harness.prometheus import PrometheusProcess

REPO = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO / "config" / "demo.yaml"


@dataclass
class Stack:
    exporter: Exporter
    prometheus: PrometheusProcess
    adapter: AdapterProcess
    kubeconfig: Path

    async def get_raw(self, path: str) -> tuple[int, str, str]:
        return await kubectl_get_raw(path, kubeconfig=self.kubeconfig)

    async def get_json(self, path: str) -> Any:
        code, out, err = await self.get_raw(path)
        assert code == 0, f"kubectl get --raw {path} failed ({code}): {err}"
        return json.loads(out)


async def wait_for_rates(prometheus: PrometheusProcess, pods: int) -> None:
    """irate needs two scrapes of every pod's counter."""
    await prometheus.wait_for_series("http_requests_total", count=pods)
    await prometheus.wait_for_query(
        "irate(http_requests_total[1m])",
        lambda result: len(result) >= pods,
        timeout=30,
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: Any) -> AsyncIterator[Stack]:
    dataset = demo_dataset()
    async with running_exporter(dataset) as exporter:
        prometheus = PrometheusProcess([exporter.target])
        try:
            await prometheus.start()
            await wait_for_rates(prometheus, len(dataset.pods))
            adapter = AdapterProcess(DEMO_CONFIG, prometheus.url)
            try:
                await adapter.start()
                kubeconfig = write_kubeconfig(
                    tmp_path_factory.mktemp("kube") / "config",
                    adapter.url,
                    ca_file=str(adapter.ca_file),
                    token="no-cluster",
                )
                yield Stack(exporter, prometheus, adapter, kubeconfig)
            finally:
                await adapter.close()
        finally:
            await prometheus.close()
