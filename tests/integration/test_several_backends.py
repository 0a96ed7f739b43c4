"""Several Prometheus backends from one adapter (`prometheusServers`, not in the Go adapter),
against real Prometheus servers: discovery from each, every query to its own rule's server
(each server's query log, a recording proxy for the command-line backend), a stopped server
that keeps its last discovery while the other stays fresh, Mimir-style tenants, reloads."""

import asyncio
import io
import json
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import pytest
import pytest_asyncio
import yaml

from adapter.check.report import check_config_main
from harness.adapter import AdapterProcess, running_adapter
from harness.exporter import CounterSpec, Dataset, GaugeSpec, PodSpec, running_exporter
from harness.prometheus import PrometheusProcess
from harness.recording_proxy import RecordingProxy, running_recording_proxy

pytestmark = pytest.mark.asyncio(loop_scope="module")

ALPHA = Dataset(
    pods=(PodSpec("alpha", "a-0", 0.5), PodSpec("alpha", "a-1", 1.0)),
    gauges=(GaugeSpec("alpha_queue_depth", {"name": "q"}, 42.0),),
)
BETA = Dataset(
    counters=(
        CounterSpec("orders_total", {"namespace": "beta", "pod": "b-0"}, 3.0),
        CounterSpec("orders_total", {"namespace": "beta", "pod": "b-1"}, 1.5),
    ),
    gauges=(GaugeSpec("beta_queue_depth", {"name": "q"}, 7.0),),
)

CUSTOM = "/apis/custom.metrics.k8s.io/v1beta2"
EXTERNAL = "/apis/external.metrics.k8s.io/v1beta1"
ALPHA_POD = f"{CUSTOM}/namespaces/alpha/pods/a-1/http_requests_per_second"
BETA_POD = f"{CUSTOM}/namespaces/beta/pods/b-0/orders_per_second"
POD_OVERRIDES = {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
# The command-line backend's only rule: a selector none of the named backends' rules uses.
DEFAULT_SERIES_QUERY = '{__name__="alpha_queue_depth",name="q"}'


async def _scraping(dataset: Dataset, ready_query: str, count: int) -> AsyncIterator[Any]:
    async with (
        running_exporter(dataset) as exporter,
        PrometheusProcess([exporter.target]) as prometheus,
    ):
        await prometheus.wait_for_query(ready_query, lambda r: len(r) >= count, timeout=30)
        yield prometheus


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def alpha() -> AsyncIterator[PrometheusProcess]:
    async for prometheus in _scraping(ALPHA, "irate(http_requests_total[1m])", 2):
        yield prometheus


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def beta() -> AsyncIterator[PrometheusProcess]:
    async for prometheus in _scraping(BETA, "irate(orders_total[1m])", 2):
        yield prometheus


def pod_rule(server: str, series_query: str) -> dict[str, Any]:
    return {
        "prometheusServer": server,
        "seriesQuery": series_query,
        "resources": {"overrides": POD_OVERRIDES},
        "name": {"matches": "^(.*)_total$", "as": "${1}_per_second"},
        "metricsQuery": "sum(irate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)",
    }


def external_rule(server: str | None, series_query: str, name: str, agg: str) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "seriesQuery": series_query,
        "resources": {"namespaced": False},
        "name": {"as": name},
        "metricsQuery": f"{agg}(<<.Series>>{{<<.LabelMatchers>>}})",
    }
    if server is not None:
        rule["prometheusServer"] = server
    return rule


def two_backend_config(alpha: PrometheusProcess, beta: PrometheusProcess) -> dict[str, Any]:
    return {
        "prometheusServers": [
            {"name": "alpha", "url": alpha.url},
            {"name": "beta", "url": beta.url, "verb": "POST", "timeout": "2s"},
        ],
        "rules": [
            pod_rule("alpha", 'http_requests_total{namespace!="",pod!=""}'),
            pod_rule("beta", 'orders_total{namespace!="",pod!=""}'),
        ],
        "externalRules": [
            external_rule("alpha", "alpha_queue_depth", "alpha_queue_depth", "sum"),
            external_rule("beta", "beta_queue_depth", "beta_queue_depth", "sum"),
            external_rule(None, DEFAULT_SERIES_QUERY, "default_queue_depth", "max"),
        ],
    }


def write_config(path: Path, config: dict[str, Any]) -> Path:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    os.replace(tmp, path)
    return path


async def fetch(adapter: AdapterProcess, path: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(adapter.url + path, ssl=adapter.ssl_context()) as response,
    ):
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


async def value(adapter: AdapterProcess, path: str) -> str:
    status, body = await fetch(adapter, path)
    assert status == 200, body
    return str(body["items"][0]["value"])


async def resources(adapter: AdapterProcess, path: str) -> set[str]:
    status, body = await fetch(adapter, path)
    assert status == 200, body
    return {r["name"] for r in body["resources"]}


async def own_metrics(adapter: AdapterProcess) -> str:
    status, text = await fetch(adapter, "/metrics")
    assert status == 200
    return str(text)


def sample(metrics: str, name: str, **labels: str) -> float | None:
    """The value of the sample `name{labels...}` (labels in any order), None if absent."""
    for line in metrics.splitlines():
        head, _, number = line.rpartition(" ")
        base, _, rest = head.partition("{")
        if base != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(number)
    return None


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        await asyncio.sleep(0.1)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def default_proxy(alpha: PrometheusProcess) -> AsyncIterator[RecordingProxy]:
    """The command-line backend: alpha's Prometheus, through a proxy that records."""
    async with running_recording_proxy(alpha.url) as proxy:
        yield proxy


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def adapter(
    alpha: PrometheusProcess,
    beta: PrometheusProcess,
    default_proxy: RecordingProxy,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[AdapterProcess]:
    config = write_config(
        tmp_path_factory.mktemp("backends") / "config.yaml", two_backend_config(alpha, beta)
    )
    async with running_adapter(config, default_proxy.url, ["--prometheus-timeout=2s"]) as running:
        yield running


async def test_discovery_lists_the_metrics_of_every_backend(adapter: AdapterProcess) -> None:
    custom = await resources(adapter, CUSTOM)
    assert {"pods/http_requests_per_second", "pods/orders_per_second"} <= custom
    external = await resources(adapter, EXTERNAL)
    assert {"alpha_queue_depth", "beta_queue_depth", "default_queue_depth"} <= external


async def test_each_query_goes_to_the_server_of_its_rule(
    adapter: AdapterProcess,
    alpha: PrometheusProcess,
    beta: PrometheusProcess,
    default_proxy: RecordingProxy,
) -> None:
    cases = [
        (ALPHA_POD, "1", alpha, "http_requests_total"),
        (BETA_POD, "3", beta, "orders_total"),
        (f"{EXTERNAL}/namespaces/default/alpha_queue_depth", "42", alpha, "sum(alpha_queue_depth"),
        (f"{EXTERNAL}/namespaces/default/beta_queue_depth", "7", beta, "sum(beta_queue_depth"),
    ]
    for path, expected, server, promql in cases:
        other = beta if server is alpha else alpha
        before = len(server.query_log()), len(other.query_log())
        assert await value(adapter, path) == expected, path

        async def logged(
            server: PrometheusProcess = server, promql: str = promql, start: int = before[0]
        ) -> bool:
            return any(promql in q for q in server.query_log()[start:])

        await eventually(logged, f"{promql} in the query log of {server.url}", 5)
        assert not any(promql in q for q in other.query_log()[before[1] :]), path
    # The rule without prometheusServer: the command-line backend (the proxy, then alpha).
    default_proxy.clear()
    path = f"{EXTERNAL}/namespaces/default/default_queue_depth"
    assert await value(adapter, path) == "42"
    queries = [r for r in default_proxy.requests if r.path.endswith("/api/v1/query")]
    assert [dict(r.query)["query"].startswith("max(") for r in queries] == [True]


async def test_the_command_line_backend_sees_only_its_own_rules(
    adapter: AdapterProcess, default_proxy: RecordingProxy
) -> None:
    default_proxy.clear()
    status, _ = await fetch(adapter, ALPHA_POD)
    assert status == 200
    # Relists every second: wait for one to reach the proxy, then look at all it was sent.

    async def relisted() -> bool:
        return any(k == "match[]" for r in default_proxy.requests for k, _ in r.query)

    await eventually(relisted, "a relist through the command-line backend", 5)
    for request in default_proxy.requests:
        matches = [v for k, v in request.query if k == "match[]"]
        if request.body:
            matches += [v for k, v in parse_qsl(request.body.decode()) if k == "match[]"]
        assert all(m == DEFAULT_SERIES_QUERY or "alpha_queue_depth" in m for m in matches), request
        text = request.raw_path + request.body.decode()
        for foreign in ("http_requests_total", "orders_total", "beta_queue_depth"):
            assert foreign not in text, request


async def test_own_metrics_are_labelled_by_backend(adapter: AdapterProcess) -> None:
    metrics = await own_metrics(adapter)
    for backend in ("default", "alpha", "beta"):
        count = sample(
            metrics,
            "prometheus_adapter_backend_requests_total",
            backend=backend,
            path="/api/v1/query",
            code="200",
        )
        assert count is not None and count >= 1, backend
        assert (
            sample(metrics, "prometheus_adapter_backend_relist_failed_queries", backend=backend)
            == 0
        )
    # The Go adapter's histogram keeps its labels: one `server` per URL.
    assert "prometheus_adapter_prometheus_client_request_duration_seconds_bucket" in metrics


async def test_a_stopped_backend_keeps_its_last_discovery_while_the_other_stays_fresh(
    adapter: AdapterProcess, alpha: PrometheusProcess, beta: PrometheusProcess
) -> None:
    assert await value(adapter, BETA_POD) == "3"
    await beta.stop()
    try:
        status, body = await fetch(adapter, BETA_POD)
        assert status == 500 and body["message"].endswith("unable to fetch metrics")
        assert await value(adapter, ALPHA_POD) == "1"

        async def beta_failing() -> bool:
            failed = sample(
                await own_metrics(adapter),
                "prometheus_adapter_backend_relist_failed_queries",
                backend="beta",
            )
            return failed == 2  # orders_total and beta_queue_depth

        await eventually(beta_failing, "beta's series queries failing", 10)
        metrics = await own_metrics(adapter)
        last = "prometheus_adapter_backend_relist_last_success_timestamp_seconds"
        alpha_success = sample(metrics, last, backend="alpha")
        assert alpha_success is not None
        assert (
            sample(metrics, "prometheus_adapter_backend_relist_failed_queries", backend="alpha")
            == 0
        )

        async def alpha_relisted() -> bool:
            seen = sample(await own_metrics(adapter), last, backend="alpha")
            return seen is not None and seen > alpha_success

        await eventually(alpha_relisted, "a successful relist of alpha while beta is down", 10)
        # beta's metrics are still listed (its last good discovery), alpha's still served.
        assert "pods/orders_per_second" in await resources(adapter, CUSTOM)
        assert "beta_queue_depth" in await resources(adapter, EXTERNAL)
        assert await value(adapter, ALPHA_POD) == "1"
        status, _ = await fetch(adapter, "/readyz")
        assert status == 200
        assert re.search(
            r"relist: unable to list series for \d+ of \d+ series queries \(keeping their last "
            r"good series; \d+ metrics\): Prometheus server 'beta': connection: .*; retrying in ",
            adapter.log(),
        ), adapter.log()
    finally:
        await beta.restart()

    async def beta_served() -> bool:
        status, body = await fetch(adapter, BETA_POD)
        return status == 200 and [i["value"] for i in body["items"]] == ["3"]

    await eventually(beta_served, "beta's metric served again", 30)

    async def beta_recovered() -> bool:
        failed = sample(
            await own_metrics(adapter),
            "prometheus_adapter_backend_relist_failed_queries",
            backend="beta",
        )
        return failed == 0

    await eventually(beta_recovered, "beta's discovery recovered", 10)


async def test_tenants_of_one_backend_each_send_their_own_org_id(
    alpha: PrometheusProcess, tmp_path: Path
) -> None:
    token = tmp_path / "tenant-two-token"
    token.write_text("tenant-two-secret-token\n")
    async with running_recording_proxy(alpha.url, require_header="X-Scope-OrgID") as mimir:
        config = {
            "prometheusServers": [
                {"name": "tenant-one", "url": mimir.url, "headers": {"X-Scope-OrgID": "one"}},
                {
                    "name": "tenant-two",
                    "url": mimir.url,
                    "headers": {"x-scope-orgid": "two"},
                    "tokenFile": str(token),
                    "verb": "POST",
                },
            ],
            "externalRules": [
                external_rule(
                    "tenant-one", 'alpha_queue_depth{name="q"}', "tenant_one_queue", "sum"
                ),
                external_rule(
                    "tenant-two", '{__name__="alpha_queue_depth"}', "tenant_two_queue", "max"
                ),
            ],
        }
        path = write_config(tmp_path / "tenants.yaml", config)
        # The command-line backend is the bare Prometheus; no rule uses it.
        async with running_adapter(path, alpha.url) as adapter:
            assert {"tenant_one_queue", "tenant_two_queue"} <= await resources(adapter, EXTERNAL)
            for name in ("tenant_one_queue", "tenant_two_queue"):
                assert await value(adapter, f"{EXTERNAL}/namespaces/default/{name}") == "42"
            log = adapter.log()
        assert mimir.requests
        assert all(r.status != 401 for r in mimir.requests), [r.path for r in mimir.requests]
        # Each tenant's series listings (match[], which label-name discovery narrows to each
        # metric) and queries (by their aggregation) are its own rule's.
        matches: dict[str, set[str]] = {"one": set(), "two": set()}
        queries: dict[str, set[str]] = {"one": set(), "two": set()}
        for request in mimir.requests:
            tenant = request.headers["X-Scope-Orgid"]
            params = list(request.query)
            if request.body:
                params += parse_qsl(request.body.decode())
            for key, text in params:
                if key == "match[]":
                    matches[tenant].add(text)
                if key == "query":
                    queries[tenant].add(text[:4])
            secret = request.headers.get("Authorization")
            assert (secret == "Bearer tenant-two-secret-token") == (tenant == "two"), request
            if request.path.endswith("/api/v1/query"):
                assert request.method == ("POST" if tenant == "two" else "GET")
        assert queries == {"one": {"sum("}, "two": {"max("}}
        assert 'alpha_queue_depth{name="q"}' in matches["one"]
        assert '{__name__="alpha_queue_depth"}' in matches["two"]
        assert all('name="q"' in m for m in matches["one"]), matches
        assert not any('name="q"' in m for m in matches["two"]), matches
        assert "tenant-two-secret-token" not in log


async def test_reload_changes_replaces_and_removes_backends(
    alpha: PrometheusProcess, beta: PrometheusProcess, tmp_path: Path
) -> None:
    moving = f"{EXTERNAL}/namespaces/default/moving_queue"

    def config(url: str, series: str, **extra: str) -> dict[str, Any]:
        return {
            "prometheusServers": [{"name": "mover", "url": url, **extra}],
            "externalRules": [external_rule("mover", series, "moving_queue", "sum")],
        }

    path = write_config(tmp_path / "config.yaml", config(alpha.url, "alpha_queue_depth"))
    async with running_adapter(path, alpha.url) as adapter:
        assert await value(adapter, moving) == "42"

        # The entry now names beta's Prometheus: a new client, and the rule's series there.
        before = len(beta.query_log())
        write_config(path, config(beta.url, "beta_queue_depth"))

        async def moved() -> bool:
            status, body = await fetch(adapter, moving)
            # Until the relist that the reload runs has listed beta, the old rule's query
            # reaches beta's Prometheus and finds nothing.
            return status == 200 and [i["value"] for i in body["items"]] == ["7"]

        await eventually(moved, "moving_queue served from beta", 10)
        assert any("beta_queue_depth" in q for q in beta.query_log()[before:])
        assert "Prometheus server 'mover' changed: using a new client" in adapter.log()

        # A backend whose client cannot be made refuses the reload; the old config serves on.
        write_config(path, config(beta.url, "beta_queue_depth", caFile=str(tmp_path / "none")))

        async def refused() -> bool:
            metrics = await own_metrics(adapter)
            return sample(metrics, "prometheus_adapter_config_reloads_total", result="failure") == 1

        await eventually(refused, "the reload refused", 10)
        assert "prometheusServers[0]" in adapter.log()
        assert await value(adapter, moving) == "7"

        # Without the entry, the rule goes to the command-line backend (alpha); the removed
        # backend's own metrics go away.
        assert 'backend="mover"' in await own_metrics(adapter)
        without = {
            "externalRules": [external_rule(None, "alpha_queue_depth", "moving_queue", "sum")]
        }
        write_config(path, without)

        async def back_on_default() -> bool:
            status, body = await fetch(adapter, moving)
            return status == 200 and [i["value"] for i in body["items"]] == ["42"]

        await eventually(back_on_default, "moving_queue served from the command line's", 10)
        assert 'backend="mover"' not in await own_metrics(adapter)
        assert "Prometheus server 'mover' removed" in adapter.log()


async def check(*argv: str) -> tuple[int, str, str]:
    """check-config in-process; it runs its own event loop, so in a worker thread."""
    out, err = io.StringIO(), io.StringIO()
    code = await asyncio.to_thread(check_config_main, list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


async def test_check_config_asks_every_backend_and_names_them_in_collisions(
    alpha: PrometheusProcess, beta: PrometheusProcess, tmp_path: Path
) -> None:
    config = two_backend_config(alpha, beta)
    # A collision across backends: beta's queue is also named alpha_queue_depth; the last
    # rule (beta's) wins, as in Go.
    config["externalRules"].append(
        external_rule("beta", "beta_queue_depth", "alpha_queue_depth", "sum")
    )
    config["prometheusServers"][1]["headers"] = {"Authorization": "Bearer beta-secret-token"}
    path = write_config(tmp_path / "config.yaml", config)
    code, out, err = await check("--prometheus-url", alpha.url, "-o", "json", str(path))
    assert code == 0, err
    report = json.loads(out)
    assert [r["prometheusServer"] for r in report["rules"]] == ["alpha", "beta"]
    assert report["prometheusServers"][1]["headers"] == {"Authorization": "<redacted>"}
    live = report["live"]
    assert live["prometheusServers"] == {"default": alpha.url, "alpha": alpha.url, "beta": beta.url}
    by_path = {r["path"]: r for r in (*live["rules"], *live["externalRules"])}
    assert by_path["rules[1]"]["prometheusServer"] == "beta"
    assert by_path["rules[1]"]["series"]["count"] == 2  # orders_total of b-0 and b-1, on beta
    assert by_path["externalRules[2]"]["prometheusServer"] == "default"
    assert by_path["externalRules[2]"]["series"]["count"] == 1
    [collision] = live["collisions"]
    assert collision["metric"] == "alpha_queue_depth"
    assert [p["prometheusServer"] for p in collision["producers"]] == ["alpha", "beta"]
    assert collision["winner"] == {
        "rule": "externalRules[3]",
        "series": "beta_queue_depth",
        "prometheusServer": "beta",
    }
    code, text, err = await check(
        "--prometheus-url",
        alpha.url,
        str(path),
        "--explain",
        "pods/orders_per_second",
        "--namespace",
        "beta",
    )
    assert code == 0, err
    assert (
        "collision: external alpha_queue_depth defined by externalRules[0] (alpha_queue_depth) "
        "on alpha, externalRules[3] (beta_queue_depth) on beta; externalRules[3] "
        "(beta_queue_depth) on beta wins" in text
    )
    assert "rule         rules[1] (series orders_total) on beta" in text
    assert "(on beta)" in text and "status       200" in text
    assert "beta-secret-token" not in text + out
    # An unreachable named backend is an unreachable Prometheus (exit 2), named.
    config["prometheusServers"][1]["url"] = "http://127.0.0.1:1"
    write_config(path, config)
    code, _, err = await check("--prometheus-url", alpha.url, str(path))
    assert code == 2
    assert "cannot reach Prometheus server 'beta' at http://127.0.0.1:1" in err
