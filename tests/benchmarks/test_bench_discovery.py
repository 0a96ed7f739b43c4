"""Smoke test of the discovery benchmark on a small cluster: it runs, and measures sanely.

Real Prometheus, promtool and the adapter as a process, with 2,000 series; a few seconds.
No timing assertions: only that every number was measured and the counts are exact.
"""

import math
import time
from pathlib import Path

import pytest

from benchmarks.bench_discovery import (
    DiscoveryResult,
    _prepare_data,
    format_table,
    measure_discovery,
)
from harness import packages
from harness.prometheus import PrometheusProcess
from harness.series_data import cluster_series, write_openmetrics


def _obtain_prometheus() -> str | None:
    try:
        return packages.ensure_prometheus()
    except RuntimeError:
        return None


needs_prometheus = pytest.mark.skipif(
    _obtain_prometheus() is None,
    reason="prometheus missing: apt-get install prometheus (as root)",
)

HELM_CONTAINER_QUERY = '{__name__=~"^container_.*",container!="POD",namespace!="",pod!=""}'
HELM_OTHER_QUERY = '{namespace!="",__name__!~"^container_.*"}'


def test_cluster_series_counts_are_exact_and_deterministic() -> None:
    series = list(cluster_series(1234))
    assert sum(selected for _, selected in series) == 1234
    assert series[-1][1]  # it stops at the last selected series
    assert series == list(cluster_series(1234))
    assert len({text for text, _ in series}) == len(series)  # no duplicates
    names = {text[: text.index("{")] for text, _ in series}
    assert 50 <= len(names) <= 200
    assert any(name.endswith("_seconds_total") for name in names)
    assert any('service="' in text and "http_requests_total" in text for text, _ in series)
    assert not any(selected for text, selected in series if 'namespace="' not in text)
    assert not any(selected for text, selected in series if 'container="POD"' in text)
    assert list(cluster_series(0)) == []


@needs_prometheus
async def test_backfill_file_selects_the_written_series(tmp_path: Path) -> None:
    now = int(time.time())
    source = tmp_path / "series.om"
    counts = write_openmetrics(source, 500, [now - 120, now - 60])
    assert (counts.matched, counts.samples) == (500, 2 * counts.total)
    assert source.read_text().endswith("# EOF\n")
    async with PrometheusProcess(
        workdir=tmp_path / "prom", backfill_file=source, backfill_timeout=60
    ) as prometheus:
        container = await prometheus.series(HELM_CONTAINER_QUERY)
        other = await prometheus.series(HELM_OTHER_QUERY)
        everything = await prometheus.series('{__name__!=""}')
    assert len(container) + len(other) == 500
    assert len(everything) == counts.total
    assert source.exists()  # the caller's file is left in place


@needs_prometheus
async def test_measure_discovery_smoke(tmp_path: Path) -> None:
    work = tmp_path / "work"
    cache = tmp_path / "cache"
    lines: list[str] = []
    [result] = await measure_discovery(
        [2000], workdir=work, cache_dir=cache, relists=2, relist_interval=1, log=lines.append
    )
    assert isinstance(result, DiscoveryResult)
    assert result.series == 2000
    assert result.metrics > 0
    for value in (
        result.prometheus_seconds,
        result.first_relist_seconds,
        result.relist_seconds,
        result.peak_rss_mb,
        result.steady_rss_mb,
        result.ready_rss_mb,
        result.prometheus_peak_rss_mb,
    ):
        assert math.isfinite(value) and value > 0
    assert result.peak_rss_mb >= result.steady_rss_mb
    assert result.cpu_seconds_per_relist >= 0
    assert result.stalls_over_50ms is None or result.stalls_over_50ms >= 0
    assert list(work.iterdir()) == []  # temporary data removed
    assert "2000" in format_table([result])
    assert lines

    # The cached blocks are used again, without generating anything.
    data = await _prepare_data(2000, tmp_path, cache, lines.append)
    assert (data.expected_series, data.generate_seconds) == (2000, 0.0)
    assert data.blocks.parent.parent == cache
