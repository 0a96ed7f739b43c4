"""Shared helpers of the benchmarks: percentiles, process CPU and RSS from /proc, the machine's
description, markdown tables, and the summary row type of the suite.

Everything here only measures and prints; nothing asserts a timing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import importlib
import importlib.util
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CLOCK_TICKS",
    "CpuSample",
    "SummaryRow",
    "cpu_percent",
    "cpu_sample",
    "describe_machine",
    "fmt",
    "markdown_table",
    "percentile",
    "process_cpu_seconds",
    "process_groups",
    "process_rss_mb",
    "run",
    "to_jsonable",
]

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- statistics -------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; 0.0 when there are none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


# --- processes ----------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str]:
    # The command name (field 2) may hold spaces and parentheses: split after the last ")".
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            ppid = int(_stat_fields(int(entry.name))[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def process_cpu_seconds(pid: int, *, tree: bool = True) -> float:
    """User + system CPU seconds of ``pid`` (all its threads) and, with ``tree``, of its live
    descendants (should the process fork workers). 0.0 for a process that is gone."""
    total = 0
    for member in [pid, *(_descendants(pid) if tree else ())]:
        try:
            fields = _stat_fields(member)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def process_rss_mb(pid: int, *, tree: bool = True) -> float:
    """Resident set size in MiB of ``pid`` (plus its live descendants with ``tree``)."""
    total_kb = 0
    for member in [pid, *(_descendants(pid) if tree else ())]:
        try:
            text = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("VmRSS:"):
                total_kb += int(line.split()[1])
                break
    return total_kb / 1024


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already in user
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds of named processes, of this process and of the machine, at one moment."""

    at: float
    processes: Mapping[str, float]
    machine_busy: float
    machine_total: float


def process_groups(pids: Mapping[str, int | None]) -> dict[str, list[int]]:
    """Each named process with its descendants, resolved now: sampling these later reads a
    few /proc files instead of scanning all of /proc (which would stall the load generator)."""
    return {name: [pid, *_descendants(pid)] for name, pid in pids.items() if pid is not None}


def cpu_sample(groups: Mapping[str, Sequence[int]]) -> CpuSample:
    """Sample each group of processes (see :func:`process_groups`), this process (as
    ``loadgen``) and the machine."""
    processes = {
        name: sum(process_cpu_seconds(pid, tree=False) for pid in members)
        for name, members in groups.items()
    }
    processes["loadgen"] = time.process_time()
    busy, total = _machine_cpu()
    return CpuSample(time.monotonic(), processes, busy, total)


def cpu_percent(before: CpuSample, after: CpuSample) -> dict[str, float]:
    """Each process's CPU use between two samples in % of one core; ``machine`` in % of one
    core too (so a saturated 2-core machine shows 200); ``other``: the machine's use beyond
    the sampled processes (anything else running, and kernel work such as loopback TCP not
    charged to a process): a high value means the measurement was disturbed."""
    elapsed = max(after.at - before.at, 1e-9)
    result = {
        name: 100 * (after.processes[name] - before.processes.get(name, 0.0)) / elapsed
        for name in after.processes
    }
    cores = os.cpu_count() or 1
    total = after.machine_total - before.machine_total
    busy = after.machine_busy - before.machine_busy
    machine = 100 * cores * busy / total if total > 0 else 0.0
    result["other"] = max(0.0, machine - sum(result.values()))
    result["machine"] = machine
    return result


# --- the machine ----------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _prometheus_version() -> str:
    try:
        from harness.packages import ensure_prometheus  # noqa: PLC0415 (may install it)

        output = subprocess.run(
            [ensure_prometheus(), "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, RuntimeError, subprocess.SubprocessError) as error:
        return f"unknown ({error})"
    first = (output.stdout or output.stderr).splitlines()
    return first[0].strip() if first else "unknown"


def describe_machine() -> dict[str, Any]:
    """Date, cores, CPU model, memory, Python, Prometheus, uvloop: for the results file."""
    memory_mb = 0.0
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_mb = int(line.split()[1]) / 1024
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_mb": round(memory_mb),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "prometheus": _prometheus_version(),
        "uvloop_installed": importlib.util.find_spec("uvloop") is not None,
    }


# --- tables ------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 1) -> str:
    """A number for a table: thousands separators, ``digits`` decimals, "-" for None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A markdown table with padded columns (as readable in a terminal as rendered);
    columns whose cells all look numeric are right-aligned."""
    body = [[str(cell) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in body:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))

    def numeric(index: int) -> bool:
        cells = [row[index] for row in body if row[index] not in ("", "-")]
        return bool(cells) and all(
            c.replace(",", "").replace(".", "").replace("-", "").replace("%", "").isdigit()
            for c in cells
        )

    right = [numeric(i) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.rjust(widths[i]) if right[i] else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(
        "-" * (w + 1) + ":" if right[i] else "-" * (w + 2) for i, w in enumerate(widths)
    ) + "|"  # fmt: skip
    return "\n".join([line(headers), rule, *(line(row) for row in body)])


@dataclass
class SummaryRow:
    """One line of the suite's summary: what was measured against which target."""

    area: str
    case: str
    measured: str
    target: str
    meets: bool | None  # None: no target, or not measured

    @property
    def verdict(self) -> str:
        return {True: "yes", False: "NO", None: "-"}[self.meets]


def to_jsonable(value: Any) -> Any:
    """Dataclasses (also nested), mappings, sequences and Paths as JSON-ready values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not f.name.startswith("_")
        }
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


Logger = Callable[[str], None]


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> str:
    """Run ``main()`` on uvloop's event loop when uvloop is installed (the load generator
    then costs less CPU), else on asyncio's; returns which."""
    try:
        uvloop: Any = importlib.import_module("uvloop")
    except ImportError:
        asyncio.run(main())
        return "asyncio"
    uvloop.run(main())
    return "uvloop"
