"""Real-world configs of the Go adapter against a real Prometheus: check-config live, and the
adapter started with each, serving every API the config defines.

The configs are read from ../shared/realworld-configs/ (harness.realworld; skipped when
absent). One Prometheus scrapes harness.realworld.realworld_dataset() for the whole module:
pods web-0 and web-1 in namespace `shop`, nodes node-a and node-b, and series in the label
shapes those configs expect.
"""

import asyncio
import io
import json
import re
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from adapter.check.report import check_config_main
from harness.adapter import AdapterProcess, running_adapter
from harness.prometheus import PrometheusProcess
from harness.realworld import (
    NAMESPACE,
    NODES,
    POD_NAMES,
    REALWORLD_CONFIG_DIR,
    realworld_configs,
    realworld_dataset,
)
from tests.integration.conftest import scraping_prometheus

pytestmark = pytest.mark.asyncio(loop_scope="module")

CONFIGS = realworld_configs()
needs_configs = pytest.mark.skipif(not CONFIGS, reason=f"{REALWORLD_CONFIG_DIR} is absent")

# klog-style ERROR lines of the adapter's log (`E1206 10:00:00.000 ...`).
_ERROR_LINE = re.compile(r"^E\d{4} ", re.MULTILINE)


@dataclass(frozen=True)
class Served:
    """One request per API a config serves: a custom metric path (under
    /apis/custom.metrics.k8s.io/v1beta1/) and the objects it reports, an external metric in
    namespace `shop`, and whether metrics.k8s.io is served."""

    custom: str | None = None
    objects: frozenset[str] = frozenset(POD_NAMES)
    external: str | None = None
    resource: bool = False


def _pods(metric: str) -> str:
    return f"namespaces/{NAMESPACE}/pods/*/{metric}"


# Deckhouse's `custom_metric::...` rules (kube_pod_created, ...) render queries that only its
# own Prometheus proxy understands; plain Prometheus rejects them, in Go as here, so 06 is
# asked for its cAdvisor metric instead.
SERVED = {
    "01-kube-prometheus.yaml": Served(resource=True),
    "02-upstream-deploy-configmap.yaml": Served(resource=True),
    "03-helm-chart-defaults-plus-resource-example.yaml": Served(_pods("cpu_usage"), resource=True),
    "04-metalk8s-chart-1.4.0.yaml": Served(_pods("cpu_usage"), resource=True),
    "05-metalk8s-chart-4.10.0.yaml": Served(_pods("cpu_usage"), resource=True),
    "06-deckhouse.yaml": Served(_pods("cpu_1m"), external="queue_size", resource=True),
    "07-datatron-kube-prometheus.yaml": Served(resource=True),
    "08-csantanapr-istio.yaml": Served(
        f"namespaces/{NAMESPACE}/services/*/istio_requests_per_second", frozenset({"web"})
    ),
    "09-briankopp-external-helm.yaml": Served(_pods("cpu_usage"), external="foobar"),
    "10-sam-k16-k6-helm.yaml": Served(_pods("order_requests_per_second")),
    "11-zhangshijle-hpa-files.yaml": Served(
        _pods("http_requests_qps"), external="orders_queue_length", resource=True
    ),
    "12-cheng0214-tutorial.yaml": Served(_pods("http_requests_per_second")),
    "13-mrlioncub-rabbitmq-helm.yaml": Served(_pods("rabbitmq_queue_messages")),
    "14-opspresso-argocd-helm.yaml": Served(_pods("agent_studio_active_runs")),
    "15-dcaglar-kafka-lag-helm.yaml": Served(external="kafka_consumer_group_lag"),
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def prometheus() -> AsyncIterator[PrometheusProcess]:
    async with scraping_prometheus(realworld_dataset()) as prometheus:
        yield prometheus


async def check_config_live(prometheus_url: str, config: Path) -> dict[str, Any]:
    """`prometheus-adapter check-config --prometheus-url=... -o json FILE`, in-process (it
    runs its own event loop, so in a worker thread)."""
    out, err = io.StringIO(), io.StringIO()
    argv = ["--prometheus-url", prometheus_url, "-o", "json", str(config)]
    code = await asyncio.to_thread(check_config_main, argv, out, err)
    assert code == 0, err.getvalue() or out.getvalue()
    report: dict[str, Any] = json.loads(out.getvalue())
    return report


@needs_configs
async def test_every_config_has_its_requests() -> None:
    assert sorted(SERVED) == [path.name for path in CONFIGS]


@needs_configs
@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
async def test_check_config_live_finds_metrics_for_every_rule(
    prometheus: PrometheusProcess, config: Path
) -> None:
    report = await check_config_live(prometheus.url, config)
    assert (report["valid"], report["errors"]) == (True, [])
    live = report["live"]
    for rule in [*live["rules"], *live["externalRules"]]:
        where = f"{rule['path']} ({rule['seriesQuery']})"
        assert not rule.get("error"), where
        assert rule["series"]["count"] > 0, where
        assert rule["metrics"], where
        for metric in rule["metrics"]:
            assert metric.get("external") or metric["resources"], (where, metric)
    assert live["warnings"] == []
    served = SERVED[config.name]
    if served.custom is not None:
        resource, metric = served.custom.split("/")[-3::2]
        assert f"{resource}/{metric}" in live["advertised"]["custom"]
    if served.external is not None:
        assert served.external in live["advertised"]["external"]


async def get_json(session: aiohttp.ClientSession, adapter: AdapterProcess, path: str) -> Any:
    async with session.get(adapter.url + path, ssl=adapter.ssl_context()) as response:
        body = await response.text()
        assert response.status == 200, f"GET {path}: {response.status} {body}"
        return json.loads(body)


async def assert_serves(adapter: AdapterProcess, served: Served) -> None:
    async with aiohttp.ClientSession() as session:
        if served.custom is not None:
            listed = await get_json(session, adapter, "/apis/custom.metrics.k8s.io/v1beta1")
            resource, metric = served.custom.split("/")[-3::2]
            assert f"{resource}/{metric}" in {r["name"] for r in listed["resources"]}
            values = await get_json(
                session, adapter, f"/apis/custom.metrics.k8s.io/v1beta1/{served.custom}"
            )
            assert {i["describedObject"]["name"] for i in values["items"]} == served.objects
        if served.external is not None:
            listed = await get_json(session, adapter, "/apis/external.metrics.k8s.io/v1beta1")
            assert served.external in {r["name"] for r in listed["resources"]}
            path = f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{NAMESPACE}/{served.external}"
            assert (await get_json(session, adapter, path))["items"]
        if served.resource:
            listed = await get_json(session, adapter, "/apis/metrics.k8s.io/v1beta1")
            assert {r["name"] for r in listed["resources"]} == {"nodes", "pods"}
            base = "/apis/metrics.k8s.io/v1beta1"
            pods = await get_json(session, adapter, f"{base}/namespaces/{NAMESPACE}/pods")
            assert [p["metadata"]["name"] for p in pods["items"]] == list(POD_NAMES)
            assert all(p["containers"] for p in pods["items"])
            nodes = await get_json(session, adapter, f"{base}/nodes")
            assert [n["metadata"]["name"] for n in nodes["items"]] == list(NODES)


@needs_configs
@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
async def test_adapter_serves_every_api_of_the_config(
    prometheus: PrometheusProcess, config: Path
) -> None:
    async with running_adapter(config, prometheus.url) as adapter:
        await assert_serves(adapter, SERVED[config.name])
        log = adapter.log()
    assert not _ERROR_LINE.search(log), log


async def test_a_config_with_more_documents_starts_the_adapter(
    prometheus: PrometheusProcess, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        textwrap.dedent(
            """\
            rules:
            - seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
              resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
              name: {matches: "^(.*)_total$", as: "${1}_per_second"}
              metricsQuery: sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)
            ---
            # What a templating tool appends: a second document, ignored as by the Go adapter.
            rules: []
            ---
            """
        )
    )
    async with running_adapter(config, prometheus.url) as adapter:
        await assert_serves(adapter, Served(_pods("http_requests_per_second")))
        log = adapter.log()
    assert f"warning: {config}:6: another YAML document starts here and is ignored" in log
    assert not _ERROR_LINE.search(log), log
