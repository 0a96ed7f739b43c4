"""Discovery against a real Prometheus: the registry built from streamed `/api/v1/series`
batches, and the one built from metric names and label names, are the one the whole series
lists give, for the Helm chart's default rules and the demo rules, over a few thousand
backfilled series."""

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from adapter.discovery.registry import SeriesShape, build_registry
from adapter.discovery.relister import AUTO, LABEL_NAMES, SERIES, Relister
from adapter.naming.rules import load_rules
from adapter.prometheus.client import PrometheusClient, PrometheusConfig
from harness.exporter import synthetic_dataset
from harness.prometheus import PrometheusProcess

pytestmark = pytest.mark.asyncio(loop_scope="module")

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
PODS = 1000  # four series each, plus nodes and queues: ~4,100 series
MAX_AGE = 600.0


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def prometheus() -> AsyncIterator[PrometheusProcess]:
    now = int(time.time())
    history = synthetic_dataset(PODS, 10).openmetrics_history(now - 120, now - 1, step=30)
    async with PrometheusProcess(backfill=history) as process:
        yield process


@pytest.mark.parametrize("mode", [SERIES, LABEL_NAMES, AUTO])
@pytest.mark.parametrize("config", ["helm-default-rules.yaml", "demo.yaml"])
async def test_discovered_registry_is_the_listed_registry(
    prometheus: PrometheusProcess, config: str, mode: str
) -> None:
    compiled = load_rules(CONFIG_DIR / config)
    now = time.time()
    async with PrometheusClient(PrometheusConfig(url=prometheus.url)) as client:
        relister = Relister(
            client,
            compiled.rules,
            compiled.external_rules,
            interval=60,
            max_age=MAX_AGE,
            clock=lambda: now,
            mode=mode,
        )
        result = await relister.relist_once()
        assert result.ok, result.failures
        assert relister.uses_label_names == (mode != SERIES)

        shapes: dict[str, frozenset[SeriesShape]] = {}
        total = 0
        most_batches = 0
        for query in relister.queries:
            listed = await client.series([query], start=now - MAX_AGE)
            batches: list[list[dict[str, str]]] = []
            count = await client.stream_series([query], start=now - MAX_AGE, sink=batches.append)
            assert [s for batch in batches for s in batch] == listed
            assert count == len(listed)
            shapes[query] = frozenset(SeriesShape.from_labels(labels) for labels in listed)
            total += count
            most_batches = max(most_batches, len(batches))

    assert total >= PODS  # the rules did select the data set
    assert most_batches > 1  # and some answer came in several batches
    expected = build_registry(compiled.rules, compiled.external_rules, shapes)
    assert len(expected) > 0
    assert relister.registry == expected
