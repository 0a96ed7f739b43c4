"""Smoke test of the serving and HPA-fleet benchmarks at tiny sizes: they run end to end
(real Prometheus, exporter and fake kube-apiserver processes, the adapter as its own process)
and their results are well-formed. No timing is asserted: these are numbers, not tests of
speed."""

import math
from pathlib import Path

from benchmarks.bench_fleet import FleetResult, fleet_tables, measure_fleet
from benchmarks.bench_serving import ServingLayout, measure_serving, serving_tables
from benchmarks.report import SummaryRow, markdown_table, percentile, to_jsonable
from benchmarks.suite import SuiteResult, render, summarize


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) and v >= 0 for v in values)


async def test_serving_benchmark_runs_and_reports(tmp_path: Path) -> None:
    notes: list[str] = []
    results = await measure_serving(
        seconds=0.3,
        concurrencies=(1, 4),
        modes=("cluster",),
        layout=ServingLayout(namespaces=2, pods_per_namespace=100, queues=4),
        scrape_interval="1s",
        workdir=tmp_path,
        notes=notes,
        log=lambda _line: None,
    )
    cases = {
        "named pod metric": 1,
        "pods/* selecting 10 pods": 10,
        "pods/* selecting 100 pods": 100,
        "external metric": 1,
    }
    assert [(r.case, r.concurrency) for r in results] == [
        (case, c) for case in cases for c in (1, 4)
    ]
    for r in results:
        assert r.mode == "cluster"
        assert r.requests > 0 and r.errors == 0, r
        assert r.items_per_response == cases[r.case], r
        assert r.distinct_paths > 1
        assert _finite(r.rps, r.p50_ms, r.p99_ms, r.max_ms, r.adapter_cpu_ms_per_request)
        assert r.p50_ms <= r.p99_ms <= r.max_ms
        assert r.startup_seconds > 0 and r.idle_rss_mb > 0 and r.loaded_rss_mb > 0
        assert {"adapter", "prometheus", "apiserver", "loadgen", "machine"} <= set(r.cpu_percent)
    table = serving_tables(results)
    assert "pods/* selecting 100 pods" in table and "start-up" in table


async def test_fleet_benchmark_runs_and_reports(tmp_path: Path) -> None:
    result = await measure_fleet(
        steps=(20, 40),
        variants=("default",),
        sar_variant="never",
        period=1.0,
        periods=1,
        warmup_periods=1,
        hpas_per_namespace=20,
        scrape_interval="1s",
        # Only well-formedness matters here; a busy test machine must not stop the ramp.
        p99_limit_ms=60_000,
        lateness_limit_ms=60_000,
        workdir=tmp_path,
        log=lambda _line: None,
    )
    assert isinstance(result, FleetResult)
    assert result.max_hpas == 40 and result.namespaces == 2
    assert result.pods > 40 and result.services > 0 and result.queues > 0
    (fleet_run,) = result.runs
    assert fleet_run.variant == "default" and fleet_run.adapter_flags == []
    assert [s.hpas for s in fleet_run.steps] == [20, 40]
    assert fleet_run.largest_sustained == 40
    for step in fleet_run.steps:
        assert step.errors == 0 and step.verdict == "ok", step
        assert step.requests == step.hpas  # one measured period: each HPA asked once
        assert step.target_rps == step.hpas / 1.0
        assert set(step.p99_ms_by_kind) == {"pods", "object", "external"}
        assert _finite(step.p50_ms, step.p99_ms, step.max_ms, step.late_p99_ms)
        assert step.sars >= 0 and step.adapter_rss_mb > 0
        assert {"adapter", "apiserver", "prometheus", "loadgen", "machine"} <= set(step.cpu_percent)
    assert "largest N sustained" in fleet_tables(result)

    # The suite's summary and report accept it.
    suite = SuiteResult(machine=_machine(), arguments={}, fleet=result)
    suite.summary = summarize(suite)
    assert any(row.area == "HPA fleet" and row.meets is False for row in suite.summary)
    assert "HPA fleet" in render(suite)
    assert to_jsonable(result)["runs"][0]["steps"][0]["hpas"] == 20


def _machine() -> dict[str, object]:
    return {
        "date": "2024-01-01T00:00:00+00:00",
        "cores": 2,
        "cpu_model": "test",
        "memory_mb": 1,
        "platform": "test",
        "python": "3.11",
        "prometheus": "test",
        "uvloop_installed": False,
    }


def test_helpers() -> None:
    assert percentile([], 99) == 0.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 99) == 99.0
    table = markdown_table(("a", "b"), [("x", "1,000"), ("yy", "2")])
    assert table.splitlines()[1] == "|----|------:|"
    assert SummaryRow("a", "b", "c", "d", None).verdict == "-"
