"""The benchmark suite: discovery, serving, HPA fleet, idle RSS and start-up, in one command.

Run from the repository root: ``python benchmarks/suite.py`` (or ``scripts/bench``, which
makes a virtualenv first); ``--quick`` for a short smoke run (small sizes, 1 s cases);
``--only serving,fleet`` to run some areas. It prints ONE summary table (area, case, measured,
target or Go figure, meets target) and then the detail tables, and writes the same to
``benchmarks/results/latest.md`` and ``latest.json`` with the date, the machine's core count
and CPU model, and the Python and Prometheus versions.

- discovery: ``measure_discovery`` of benchmarks/bench_discovery.py at 10k, 100k and 1M
  series (skipped with a note when that module is missing);
- serving: ``measure_serving`` of benchmarks/bench_serving.py, cluster mode with
  authentication and authorization on, and with ``--namespace-query-ttl=5s`` when the adapter
  has that flag; concurrency 1, 8 and 32;
- fleet: ``measure_fleet`` of benchmarks/bench_fleet.py, ramped to 20,000 HPAs;
- idle RSS and start-up: of the serving benchmark's cluster-mode adapter (and the fleet's).

Targets are those of issue 7 against the Go adapter v0.12.0 measured on this machine class
at concurrency 8. Where Go's figure is a range, a throughput target is its upper end (at least
Go's best run) and a p99 target is its upper end too. Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.bench_fleet import DEFAULT_STEPS, FleetResult, fleet_tables, measure_fleet  # noqa: E402
from benchmarks.bench_serving import (  # noqa: E402
    ServingLayout,
    ServingResult,
    measure_serving,
    serving_tables,
)
from benchmarks.report import (  # noqa: E402
    SummaryRow,
    describe_machine,
    fmt,
    markdown_table,
    run,
    to_jsonable,
)

__all__ = ["GO_SERVING", "SuiteResult", "main", "run_suite", "summarize"]

RESULTS = REPO / "benchmarks" / "results"
AREAS = ("discovery", "serving", "fleet")
DISCOVERY_SIZES = (10_000, 100_000, 1_000_000)


@dataclass(frozen=True)
class GoServing:
    """Go adapter v0.12.0 at concurrency 8 (issue 7): req/s and p99 ranges; our targets."""

    rps: tuple[float, float]
    p99_ms: tuple[float, float]
    target_rps: float
    target_p99_ms: float
    cpu_ms: float | None  # adapter CPU per request target (named and external)


GO_SERVING = {
    "named pod metric": GoServing((1500, 1600), (13, 16), 1600, 16, 0.43),
    "pods/* selecting 10 pods": GoServing((210, 290), (70, 110), 3 * 290, 50, None),
    "pods/* selecting 100 pods": GoServing((135, 180), (90, 130), 3 * 180, 50, None),
    "external metric": GoServing((1000, 1550), (17, 37), 1550, 37, 0.43),
}
# Go's discovery (Helm default rules): seconds and peak RSS MB by series.
GO_DISCOVERY = {10_000: (0.28, 74.0), 100_000: (2.0, 172.0)}
FLEET_TARGET = 10_000


@dataclass
class SuiteResult:
    machine: dict[str, Any]
    arguments: dict[str, Any]
    discovery: list[Any] = field(default_factory=list)
    serving: list[ServingResult] = field(default_factory=list)
    fleet: FleetResult | None = None
    summary: list[SummaryRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    discovery_table: str = ""


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# --- running the areas ----------------------------------------------------------------------


async def _discovery(quick: bool, args: argparse.Namespace, result: SuiteResult) -> None:
    try:
        module = importlib.import_module("benchmarks.bench_discovery")
        measure: Callable[..., Any] = module.measure_discovery
    except (ImportError, AttributeError) as error:
        result.notes.append(f"discovery skipped: benchmarks/bench_discovery.py unusable ({error})")
        _log(result.notes[-1])
        return
    sizes = [int(s) for s in args.discovery_sizes.split(",")] if args.discovery_sizes else None
    sizes = sizes or ([10_000] if quick else list(DISCOVERY_SIZES))
    offered: dict[str, Any] = {"sizes": sizes, "log": _log}
    if args.discovery_cache_dir:
        offered["cache_dir"] = Path(args.discovery_cache_dir)
    if quick:
        offered["quick"] = True
    accepted = inspect.signature(measure).parameters
    kwargs = {k: v for k, v in offered.items() if k in accepted}
    if inspect.iscoroutinefunction(measure):
        result.discovery = list(await measure(**kwargs))
    else:
        result.discovery = list(await asyncio.to_thread(measure, **kwargs))
    table = getattr(module, "format_table", None)
    if callable(table):
        result.discovery_table = "```\n" + str(table(result.discovery)) + "\n```"
    else:
        result.discovery_table = _generic_table(result.discovery)


def _generic_table(items: Sequence[Any]) -> str:
    rows = [to_jsonable(item) for item in items]
    if not rows or not isinstance(rows[0], dict):
        return "\n".join(str(item) for item in items)
    headers = list(rows[0])
    return markdown_table(headers, [[row.get(h, "") for h in headers] for row in rows])


async def _serving(quick: bool, args: argparse.Namespace, result: SuiteResult) -> None:
    layout = (
        ServingLayout(namespaces=4, pods_per_namespace=100, queues=20) if quick else ServingLayout()
    )
    result.serving = await measure_serving(
        seconds=args.seconds if args.seconds is not None else (1.0 if quick else 5.0),
        concurrencies=(1, 8, 32),
        modes=("cluster", "cluster-ttl", *(("no-cluster",) if args.no_cluster else ())),
        layout=layout,
        scrape_interval="2s" if quick else "5s",
        notes=result.notes,
        log=_log,
    )


async def _fleet(quick: bool, args: argparse.Namespace, result: SuiteResult) -> None:
    if args.fleet_steps:
        steps: Sequence[int] = [int(s) for s in args.fleet_steps.split(",")]
    else:
        steps = (100, 250) if quick else DEFAULT_STEPS
    result.fleet = await measure_fleet(
        steps=steps,
        variants=("default", "ttl"),
        sar_variant=args.sar_variant,
        period=5.0 if quick else 15.0,
        periods=1 if quick else 2,
        warmup_periods=1,
        scrape_interval="2s" if quick else "10s",
        log=_log,
    )


# --- the summary ---------------------------------------------------------------------------


def _range(values: tuple[float, float], digits: int = 0) -> str:
    return f"{fmt(values[0], digits)}-{fmt(values[1], digits)}"


def _serving_rows(results: Sequence[ServingResult]) -> list[SummaryRow]:
    rows: list[SummaryRow] = []
    for mode in dict.fromkeys(r.mode for r in results):
        label = "serving" if mode == "cluster" else f"serving ({mode})"
        for case, go in GO_SERVING.items():
            found = [r for r in results if r.mode == mode and r.case == case and r.concurrency == 8]
            if not found:
                continue
            r = found[0]
            go_text = f"Go {_range(go.rps)} req/s, p99 {_range(go.p99_ms)} ms"
            rows.append(
                SummaryRow(
                    label,
                    f"{case}, c=8",
                    f"{fmt(r.rps, 0)} req/s, p99 {fmt(r.p99_ms, 1)} ms"
                    + (f", {r.errors} errors" if r.errors else ""),
                    f">= {fmt(go.target_rps, 0)} req/s, p99 <= {go.target_p99_ms:g} ms ({go_text})",
                    r.rps >= go.target_rps and r.p99_ms <= go.target_p99_ms and not r.errors,
                )
            )
            if go.cpu_ms is not None:
                rows.append(
                    SummaryRow(
                        label,
                        f"{case}, c=8: adapter CPU per request",
                        f"{r.adapter_cpu_ms_per_request:.3f} ms",
                        f"<= {go.cpu_ms} ms (Go {go.cpu_ms} ms, named)",
                        r.adapter_cpu_ms_per_request <= go.cpu_ms,
                    )
                )
    return rows


def _discovery_rows(items: Sequence[Any]) -> list[SummaryRow]:
    rows: list[SummaryRow] = []
    for item in items:
        series = int(getattr(item, "series", 0))
        relist = float(getattr(item, "relist_seconds", float("nan")))
        first = float(getattr(item, "first_relist_seconds", float("nan")))
        peak = float(getattr(item, "peak_rss_mb", float("nan")))
        steady = float(getattr(item, "steady_rss_mb", float("nan")))
        stalls = getattr(item, "stalls_over_50ms", None)
        measured = (
            f"relist {relist:.2f} s (first {first:.2f} s), peak RSS {peak:.0f} MB, "
            f"steady {steady:.0f} MB"
        )
        # Sizes are nominal (10k, 100k, 1M); the series the rules select are near them.
        nominal = min(DISCOVERY_SIZES, key=lambda size: abs(size - series))
        go = GO_DISCOVERY.get(nominal)
        go_text = f"Go {go[0]} s, {go[1]:.0f} MB" if go else "no Go figure"
        if nominal == 100_000:
            target, meets = f"<= 1 s, peak <= 100 MB ({go_text})", relist <= 1 and peak <= 100
        elif nominal == 1_000_000:
            target = "peak <= 150 MB, idle (steady) <= 80 MB"
            meets = peak <= 150 and steady <= 80
        else:
            target, meets = f"no target ({go_text})", None
        rows.append(SummaryRow("discovery", f"{series:,} series", measured, target, meets))
        if stalls is not None:
            rows.append(
                SummaryRow(
                    "discovery",
                    f"{series:,} series: event-loop stalls > 50 ms",
                    str(stalls),
                    "0 (relists must not block requests)",
                    stalls == 0,
                )
            )
    return rows


def _fleet_rows(fleet: FleetResult) -> list[SummaryRow]:
    rows: list[SummaryRow] = []
    for fleet_run in fleet.runs:
        at_target = [s for s in fleet_run.steps if s.hpas == FLEET_TARGET]
        detail = ""
        if at_target:
            s = at_target[0]
            detail = f"; at {FLEET_TARGET:,}: {s.achieved_rps:,.0f} req/s, p99 {s.p99_ms:.1f} ms"
        rows.append(
            SummaryRow(
                "HPA fleet",
                f"largest N sustained ({fleet_run.variant})",
                f"{fleet_run.largest_sustained:,} HPAs{detail}; stopped: {fleet_run.stop_reason}",
                f">= {FLEET_TARGET:,} HPAs (~{FLEET_TARGET / 15:,.0f} req/s at 15 s syncs), "
                f"p99 <= {fleet.p99_limit_ms:g} ms",
                fleet_run.largest_sustained >= FLEET_TARGET,
            )
        )
    return rows


def summarize(result: SuiteResult) -> list[SummaryRow]:
    rows = _discovery_rows(result.discovery)
    rows += _serving_rows(result.serving)
    if result.fleet is not None:
        rows += _fleet_rows(result.fleet)
    cluster = [r for r in result.serving if r.mode == "cluster"]
    if cluster:
        first = cluster[0]
        rows.append(
            SummaryRow(
                "idle",
                "adapter start-up to ready (cluster mode, serving data set)",
                f"{first.startup_seconds:.2f} s",
                "no target",
                None,
            )
        )
        rows.append(
            SummaryRow(
                "idle",
                "adapter idle RSS (cluster mode, serving data set)",
                f"{first.idle_rss_mb:.1f} MB (after load {first.loaded_rss_mb:.1f} MB)",
                "<= 80 MB",
                first.idle_rss_mb <= 80,
            )
        )
    if result.fleet is not None and result.fleet.runs:
        fleet_run = result.fleet.runs[0]
        rows.append(
            SummaryRow(
                "idle",
                f"adapter idle RSS, start-up (fleet: {result.fleet.pods:,} pods watched)",
                f"{fleet_run.idle_rss_mb:.1f} MB, {fleet_run.startup_seconds:.2f} s",
                "no target",
                None,
            )
        )
    return rows


# --- output --------------------------------------------------------------------------------


def render(result: SuiteResult) -> str:
    m = result.machine
    out = [
        "# Benchmark results\n",
        f"{m['date']}; {m['cores']} cores ({m['cpu_model']}), {m['memory_mb']:,} MB; "
        f"Python {m['python']}; {m['prometheus']}; uvloop installed: {m['uvloop_installed']}; "
        f"{m['platform']}. Load generator, adapter, Prometheus, exporter and fake "
        "kube-apiserver share the machine.\n",
        f"Arguments: {' '.join(f'{k}={v}' for k, v in result.arguments.items())}; run time: "
        + ", ".join(f"{area} {seconds:.0f} s" for area, seconds in result.seconds.items())
        + "\n",
        "## Summary\n",
        markdown_table(
            ("area", "case", "measured", "target / Go figure", "meets"),
            [(r.area, r.case, r.measured, r.target, r.verdict) for r in result.summary],
        ),
        "",
    ]
    if result.discovery_table:
        out += ["## Discovery\n", result.discovery_table, ""]
    if result.serving:
        out += [
            "## Serving\n",
            "Closed loop per (case, concurrency); every distinct path visited once just before "
            "measuring. CPU per request: the adapter's /proc/<pid>/stat over the case.\n",
            serving_tables(result.serving),
        ]
    if result.fleet is not None:
        out += ["## HPA fleet\n", fleet_tables(result.fleet)]
    if result.notes:
        out += ["## Notes\n", *(f"- {note}" for note in result.notes), ""]
    return "\n".join(out)


def _write(result: SuiteResult, text: str, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "latest.md").write_text(text + "\n")
    data = {
        "machine": result.machine,
        "arguments": result.arguments,
        "seconds": result.seconds,
        "summary": [{**to_jsonable(row), "verdict": row.verdict} for row in result.summary],
        "discovery": to_jsonable(result.discovery),
        "serving": to_jsonable(result.serving),
        "fleet": to_jsonable(result.fleet),
        "notes": result.notes,
    }
    (directory / "latest.json").write_text(json.dumps(data, indent=2) + "\n")


async def run_suite(args: argparse.Namespace) -> SuiteResult:
    areas = [a for a in (args.only or ",".join(AREAS)).split(",") if a]
    unknown = set(areas) - set(AREAS)
    if unknown:
        raise SystemExit(f"unknown areas: {', '.join(sorted(unknown))} (know {', '.join(AREAS)})")
    result = SuiteResult(
        machine=describe_machine(),
        arguments={**{k: v for k, v in vars(args).items() if v not in ("", None)}, "areas": areas},
    )
    result.machine["load_generator_loop"] = type(asyncio.get_running_loop()).__module__
    if args.quick:
        result.notes.append(
            "--quick: a smoke run at small sizes and short durations; its numbers are not "
            "comparable with the targets (the fleet's sync period is 5 s instead of 15 s)"
        )
    runners = {"discovery": _discovery, "serving": _serving, "fleet": _fleet}
    for area in areas:
        _log(f"== {area}")
        began = time.monotonic()
        try:
            await runners[area](args.quick, args, result)
        except Exception as error:  # one area failing must not lose the others' numbers
            result.notes.append(f"{area} failed: {type(error).__name__}: {error}")
            _log(traceback.format_exc())
        result.seconds[area] = time.monotonic() - began
    result.summary = summarize(result)
    return result


async def _main(args: argparse.Namespace) -> None:
    result = await run_suite(args)
    text = render(result)
    print(text)
    directory = Path(args.output_dir)
    _write(result, text, directory)
    _log(f"written: {directory / 'latest.md'} and {directory / 'latest.json'}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes, 1 s cases")
    parser.add_argument("--only", default="", help=f"comma-separated areas: {', '.join(AREAS)}")
    parser.add_argument("--seconds", type=float, default=None, help="per serving case")
    parser.add_argument("--no-cluster", action="store_true", help="add the no-cluster serving")
    parser.add_argument("--fleet-steps", default="", help="comma-separated HPA counts")
    parser.add_argument("--sar-variant", choices=("auto", "always", "never"), default="auto")
    parser.add_argument("--discovery-sizes", default="", help="comma-separated series counts")
    parser.add_argument("--discovery-cache-dir", default="", help="keep TSDB blocks here")
    parser.add_argument("--output-dir", default=str(RESULTS))
    args = parser.parse_args(argv)
    loop = run(lambda: _main(args))
    _log(f"event loop: {loop}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
