"""The adapter serves on uvloop (the default when installed) and on asyncio's own loop."""

import json

import pytest

from harness.adapter import AdapterProcess
from harness.kubectl import kubectl_get_raw, write_kubeconfig
from tests.integration.conftest import DEMO_CONFIG, Stack

pytestmark = pytest.mark.asyncio(loop_scope="module")

PATH = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/demo/pods/web-1/http_requests_per_second"


async def test_default_loop_is_uvloop(stack: Stack) -> None:
    assert "using the uvloop event loop" in stack.adapter.log()
    assert (await stack.get_json(PATH))["items"][0]["value"] == "1"


async def test_asyncio_loop_serves_the_same(stack: Stack) -> None:
    adapter = AdapterProcess(DEMO_CONFIG, stack.prometheus.url, ["--event-loop=asyncio"])
    try:
        await adapter.start()
        kubeconfig = write_kubeconfig(
            adapter.workdir / "kubeconfig", adapter.url, ca_file=str(adapter.ca_file), token="x"
        )
        code, out, err = await kubectl_get_raw(PATH, kubeconfig=kubeconfig)
        assert code == 0, err
        assert json.loads(out)["items"][0]["value"] == "1"
        assert "uvloop" not in adapter.log()
    finally:
        await adapter.close()
