"""Fixtures shared by the HTTP-layer tests: the app over an in-memory Prometheus."""

from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapter.discovery.registry import SeriesShape, build_registry
from adapter.kube.rest_mapper import BUILTIN_RESOURCES, StaticRESTMapper
from adapter.naming.rules import load_rules
from adapter.providers.custom import CustomMetricsProvider
from adapter.providers.external import ExternalMetricsProvider
from adapter.providers.objects import PrometheusObjectLister
from adapter.server.app import ServerState, build_app
from adapter.server.metrics import AdapterMetrics
from tests.unit.test_server_app import CONFIG, NOW, FakePrometheus


@pytest.fixture
async def fake() -> FakePrometheus:
    return FakePrometheus()


@pytest.fixture
async def client(fake: FakePrometheus) -> Any:
    compiled = load_rules(CONFIG)
    registry = build_registry(
        compiled.rules,
        compiled.external_rules,
        {
            compiled.rules[2].series_query: [
                SeriesShape("http_requests_total", frozenset({"namespace", "pod", "job"})),
                SeriesShape("node_requests_total", frozenset({"namespace", "node"})),
            ],
            compiled.external_rules[1].series_query: [
                SeriesShape("queue_depth", frozenset({"topic", "name"}))
            ],
        },
    )
    mapper = StaticRESTMapper(BUILTIN_RESOURCES)
    state = ServerState(
        metrics=AdapterMetrics(),
        custom=CustomMetricsProvider(
            lambda: registry, fake, PrometheusObjectLister(fake, 600), mapper, clock=lambda: NOW
        ),
        external=ExternalMetricsProvider(lambda: registry, fake),
    )
    async with TestClient(TestServer(build_app(state))) as test_client:
        test_client.state = state  # type: ignore[attr-defined]
        yield test_client
