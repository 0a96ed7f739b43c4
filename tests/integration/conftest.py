"""A real stack for the integration tests: the demo exporter, a real Prometheus scraping it,
the adapter as its own process over HTTPS, and a kubeconfig for the real kubectl."""

import json
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from harness.adapter import AdapterProcess, running_adapter
from harness.container import ImageRoot, Unavailable, build_image_root
from harness.exporter import Dataset, demo_dataset, running_exporter
from harness.kubectl import kubectl_get_raw, write_kubeconfig
from harness.prometheus import PrometheusProcess

REPO = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO / "config" / "demo.yaml"


@dataclass
class Stack:
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


@asynccontextmanager
async def scraping_prometheus(dataset: Dataset) -> AsyncIterator[PrometheusProcess]:
    """A real Prometheus scraping an exporter of `dataset`, once every pod has a rate."""
    async with (
        running_exporter(dataset) as exporter,
        PrometheusProcess([exporter.target]) as prometheus,
    ):
        await wait_for_rates(prometheus, len(dataset.pods))
        yield prometheus


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: Any) -> AsyncIterator[Stack]:
    async with (
        scraping_prometheus(demo_dataset()) as prometheus,
        running_adapter(DEMO_CONFIG, prometheus.url) as adapter,
    ):
        kubeconfig = write_kubeconfig(
            tmp_path_factory.mktemp("kube") / "config",
            adapter.url,
            ca_file=str(adapter.ca_file),
            token="no-cluster",
        )
        yield Stack(prometheus, adapter, kubeconfig)


@pytest.fixture(scope="session")
def image_root() -> Iterator[ImageRoot]:
    """The image's root filesystem from the Dockerfile's recipe, root-owned and read-only,
    with config/demo.yaml as its ConfigMap. Built once per session (~20 s)."""
    # Not under pytest's tmp dir: that is 0700 root, and the image's uid must reach the venv.
    root = Path(tempfile.mkdtemp(prefix="container-recipe-", dir="/tmp"))
    try:
        try:
            image = build_image_root(root, DEMO_CONFIG)
        except Unavailable as reason:
            pytest.skip(str(reason))
        yield image
    finally:
        shutil.rmtree(root, ignore_errors=True)
