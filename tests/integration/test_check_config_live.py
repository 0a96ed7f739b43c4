"""`check-config --prometheus-url` against a real Prometheus scraping the demo exporter.

The demo data: pods web-0/1/2 in namespace demo at 0.5, 1 and 2 requests per second (label
service=web), memory gauges, two nodes, queue gauges. Prometheus adds `job` and `instance`.
"""

import asyncio
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from adapter.check.report import check_config_main
from harness.exporter import demo_dataset
from harness.ports import free_port
from tests.integration.conftest import scraping_prometheus

pytestmark = pytest.mark.asyncio(loop_scope="module")

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
DEMO, HELM, SAMPLE = (
    str(CONFIG_DIR / name)
    for name in ("demo.yaml", "helm-default-rules.yaml", "sample-config.yaml")
)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def prometheus_url() -> AsyncIterator[str]:
    async with scraping_prometheus(demo_dataset()) as prometheus:
        yield prometheus.url


async def check(*argv: str) -> tuple[int, str, str]:
    """The CLI in-process; it runs its own event loop, so in a worker thread."""
    out, err = io.StringIO(), io.StringIO()
    code = await asyncio.to_thread(check_config_main, list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


async def check_json(*argv: str) -> Any:
    code, out, err = await check("-o", "json", *argv)
    assert code == 0, err
    return json.loads(out)


async def test_demo_text_shows_series_and_metrics(prometheus_url: str) -> None:
    code, out, err = await check("--prometheus-url", prometheus_url, DEMO)
    assert code == 0, err
    assert f"live: {prometheus_url}, series of the last 10m0s" in out
    assert "series       3 series, 1 names: http_requests_total{" in out
    assert (
        "metric       http_requests_per_second on namespaces (cluster-scoped), pods, services"
        in out
    )
    assert "metric       memory_available_bytes on nodes (cluster-scoped)" in out
    assert "metric       queue_depth (external, not namespaced) from queue_depth" in out
    assert "advertised: 6 custom metrics, 2 external metrics" in out
    assert "surprising" not in out and "collision" not in out


async def test_helm_rules_json_filters_and_surprising_resources(prometheus_url: str) -> None:
    live = (await check_json("--prometheus-url", prometheus_url, HELM))["live"]
    rules = live["rules"]
    assert [r["series"]["count"] for r in rules] == [6, 6, 6, 6, 6, 6]
    assert rules[0]["filters"] == {
        "kept": {"count": 1, "examples": ["container_cpu_usage_seconds_total"]},
        "dropped": {
            "count": 1,
            "examples": [
                {
                    "series": "container_memory_working_set_bytes",
                    "filter": "is ^container_(.*)_seconds_total$ (from name.matches)",
                }
            ],
        },
    }
    assert rules[3]["filters"]["dropped"]["examples"] == [
        {"series": "http_requests_total", "filter": "isNot .*_total$"}
    ]
    http = next(m for m in rules[4]["metrics"] if m["name"] == "http_requests")
    assert http["series"] == "http_requests_total"
    assert {r["resource"]: r["namespaced"] for r in http["resources"]} == {
        "jobs.batch": True,
        "namespaces": False,
        "pods": True,
        "services": True,
    }
    surprising = {(s["resource"], s["label"]): s["metrics"] for s in rules[4]["surprising"]}
    assert surprising == {
        ("jobs.batch", "job"): ["http_requests"],
        ("services", "service"): ["http_requests"],
    }
    assert "pods/http_requests" in live["advertised"]["custom"]
    assert "rules[5]: the filters drop all 2 series names" in live["warnings"]
    assert live["collisions"] == []
    assert live["explain"] is None
    assert [q["series"] for q in live["queries"]] == [6, 6]


async def test_sample_config_text(prometheus_url: str) -> None:
    code, out, err = await check("--prometheus-url", prometheus_url, SAMPLE)
    assert code == 0, err
    assert "warning: rules[3]: the seriesQuery found no series in the last 10m0s" in out
    assert "metric       cpu_usage on namespaces (cluster-scoped), pods" in out
    assert "surprising   jobs.batch via label 'job'" in out
    assert "metric       queue_consumer_lag (external, namespaced)" in out
    # The offline warnings are kept.
    assert "rules[2].seriesQuery: __name__!=" in out


async def test_explain_named_pod(prometheus_url: str) -> None:
    argv = ("--prometheus-url", prometheus_url, DEMO, "--explain")
    target = ("pods/http_requests_per_second", "--namespace", "demo", "--name", "web-1")
    code, out, err = await check(*argv, *target)
    assert code == 0, err
    promql = 'sum(irate(http_requests_total{namespace="demo",pod="web-1"}[1m])) by (pod)'
    assert f"PromQL       {promql}" in out
    assert '{pod="web-1"} 1\n' in out
    assert "status       200" in out
    explain = (await check_json(*argv, *target))["live"]["explain"]
    assert explain["path"] == (
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/demo/pods/web-1/http_requests_per_second"
    )
    assert (explain["rule"], explain["series"]) == ("rules[0]", "http_requests_total")
    assert [q["promql"] for q in explain["queries"]] == [promql]
    assert explain["queries"][0]["samples"][0]["labels"] == {"pod": "web-1"}
    assert explain["queries"][0]["samples"][0]["value"] == "1"
    response = explain["response"]
    assert response["kind"] == "MetricValueList"
    assert [(i["describedObject"]["name"], i["value"]) for i in response["items"]] == [
        ("web-1", "1")
    ]


async def test_explain_selector_and_v1beta1(prometheus_url: str) -> None:
    explain = (
        await check_json(
            "--prometheus-url", prometheus_url, DEMO,
            "--explain", "pods/http_requests_per_second", "--namespace", "demo",
            "--selector", "service=web", "--api-version", "v1beta1",
        )
    )["live"]["explain"]  # fmt: skip
    assert explain["path"].endswith("/pods/*/http_requests_per_second?labelSelector=service%3Dweb")
    assert explain["objects"][0]["series"] == 3
    assert explain["queries"][0]["promql"] == (
        'sum(irate(http_requests_total{namespace="demo",pod=~"web-0|web-1|web-2"}[1m])) by (pod)'
    )
    items = explain["response"]["items"]
    assert explain["response"]["apiVersion"] == "custom.metrics.k8s.io/v1beta1"
    assert {i["describedObject"]["name"]: i["value"] for i in items} == {
        "web-0": "500m",
        "web-1": "1",
        "web-2": "2",
    }


async def test_explain_external_and_namespace_object(prometheus_url: str) -> None:
    base = ("--prometheus-url", prometheus_url, DEMO, "--explain")
    external = (await check_json(*base, "queue_depth", "--metric-selector", "name=orders"))["live"][
        "explain"
    ]
    assert external["queries"][0]["promql"] == 'sum(queue_depth{name="orders"}) by (name)'
    assert [(i["metricLabels"], i["value"]) for i in external["response"]["items"]] == [
        ({"name": "orders"}, "42")
    ]
    namespace = (
        await check_json(*base, "namespaces/http_requests_per_second", "--namespace", "demo")
    )["live"]["explain"]
    assert namespace["path"].endswith("/namespaces/demo/metrics/http_requests_per_second")
    assert namespace["response"]["items"][0]["value"] == "3500m"


async def test_explain_unknown_metric_gives_404_and_hints(prometheus_url: str) -> None:
    argv = ("--prometheus-url", prometheus_url, DEMO, "--explain", "pods/http_requests")
    code, out, err = await check(*argv, "--namespace", "demo", "--name", "web-1")
    assert code == 0, err
    assert "status       404" in out
    assert "the server could not find the metric http_requests for pods" in out
    assert "hint         close metric names: pods/http_requests_per_second" in out
    explain = (await check_json(*argv))["live"]["explain"]
    assert explain["status"] == 404
    assert explain["response"]["reason"] == "NotFound"
    assert not any("pass --namespace" in h for h in explain["hints"])
    scoped = (
        await check_json(
            "--prometheus-url", prometheus_url, DEMO, "--explain", "pods/http_requests_per_second"
        )
    )["live"]["explain"]
    assert scoped["status"] == 404
    assert "pods/http_requests_per_second is namespaced: pass --namespace" in scoped["hints"]


async def test_collisions_name_the_winner(prometheus_url: str, tmp_path: Path) -> None:
    config = tmp_path / "collide.yaml"
    config.write_text(
        "rules:\n"
        + "".join(
            f"- seriesQuery: '{query}'\n"
            "  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}\n"
            "  name: {as: requests}\n"
            "  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'\n"
            for query in ("http_requests_total", "memory_usage_bytes")
        )
    )
    code, out, err = await check("--prometheus-url", prometheus_url, str(config))
    assert code == 0, err
    assert (
        "collision: custom pods/requests defined by rules[0] (http_requests_total), "
        "rules[1] (memory_usage_bytes); rules[1] (memory_usage_bytes) wins" in out
    )
    live = (await check_json("--prometheus-url", prometheus_url, str(config)))["live"]
    pods = next(c for c in live["collisions"] if c["metric"] == "pods/requests")
    assert pods["winner"] == {"rule": "rules[1]", "series": "memory_usage_bytes"}
    assert pods["between"] == "rules"


async def test_unreachable_prometheus_exits_2() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, _, err = await check("--prometheus-url", url, DEMO)
    assert code == 2
    assert f"cannot reach Prometheus at {url}:" in err


async def test_invalid_config_exits_1_without_asking_prometheus(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: 5\n")
    code, out, _ = await check("--prometheus-url", "http://127.0.0.1:1", str(bad))
    assert code == 1
    assert "INVALID" in out
