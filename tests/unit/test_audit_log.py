"""The audit log backend: lumberjack's rotation (size, backups, age, gzip), the start-up file
check, and the background writer (order, grouping, formats, stdout)."""

import asyncio
import gzip
import os
import stat
import time
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry

from adapter.audit.event import Event
from adapter.audit.levels import Level, Stage
from adapter.audit.log import LogBackend, StdoutLines, ThreadedWriter
from adapter.audit.metrics import AuditMetrics
from adapter.audit.rotate import RotatingFile, backup_name, ensure_log_file

MB = 100  # bytes in a "megabyte" for these tests
T0 = 1714557600.0  # 2024-05-01T10:00:00Z


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def rotating(path: Path, clock: Clock, **options: object) -> RotatingFile:
    return RotatingFile(str(path), clock=clock, mill_in_background=False, megabyte=MB, **options)  # type: ignore[arg-type]


def line(char: str, size: int) -> bytes:
    return char.encode() * (size - 1) + b"\n"


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_backup_name_is_lumberjacks() -> None:
    assert (
        backup_name("/var/log/audit/audit.log", T0 + 0.0305)
        == "/var/log/audit/audit-2024-05-01T10-00-00.030.log"
    )
    assert backup_name("audit", T0) == "./audit-2024-05-01T10-00-00.000"
    assert backup_name("/x/a.b.json", T0) == "/x/a.b-2024-05-01T10-00-00.000.json"


def test_rotates_when_a_write_would_pass_max_size(tmp_path: Path) -> None:
    clock = Clock()
    log = rotating(tmp_path / "audit.log", clock, max_size_mb=1)
    assert log.write_lines([line("a", 40), line("b", 40)]) == [None, None]
    clock.now += 1.5
    assert log.write_lines([line("c", 30)]) == [None]  # 80 + 30 > 100
    log.close()
    assert names(tmp_path) == ["audit-2024-05-01T10-00-01.500.log", "audit.log"]
    assert (tmp_path / "audit-2024-05-01T10-00-01.500.log").read_bytes() == line("a", 40) + line(
        "b", 40
    )
    assert (tmp_path / "audit.log").read_bytes() == line("c", 30)


def test_exactly_max_size_fits(tmp_path: Path) -> None:
    log = rotating(tmp_path / "audit.log", Clock(), max_size_mb=1)
    assert log.write_lines([line("a", 50), line("b", 50)]) == [None, None]
    log.close()
    assert names(tmp_path) == ["audit.log"]


def test_a_line_larger_than_max_size_fails_alone(tmp_path: Path) -> None:
    log = rotating(tmp_path / "audit.log", Clock(), max_size_mb=1)
    results = log.write_lines([line("a", 10), line("b", 101), line("c", 10)])
    log.close()
    assert results[0] is None and results[2] is None
    assert str(results[1]) == "write length 101 exceeds maximum file size 100"
    assert (tmp_path / "audit.log").read_bytes() == line("a", 10) + line("c", 10)


def test_existing_file_is_appended_to_or_rotated(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_bytes(line("x", 60))
    log = rotating(path, Clock(), max_size_mb=1)
    log.write_lines([line("a", 30)])
    log.close()
    assert path.read_bytes() == line("x", 60) + line("a", 30)
    # lumberjack: size + write >= max at open rotates (90 + 10 >= 100).
    log = rotating(path, Clock(T0 + 60), max_size_mb=1)
    log.write_lines([line("b", 10)])
    log.close()
    assert names(tmp_path) == ["audit-2024-05-01T10-01-00.000.log", "audit.log"]
    assert path.read_bytes() == line("b", 10)


def test_default_max_size_is_100_megabytes(tmp_path: Path) -> None:
    log = rotating(tmp_path / "audit.log", Clock())
    log.write_lines([line("a", 99 * MB)])
    log.write_lines([line("b", MB)])
    log.close()
    assert names(tmp_path) == ["audit.log"]


def test_rotated_file_keeps_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    ensure_log_file(str(path))
    log = rotating(path, Clock(), max_size_mb=1)
    log.write_lines([line("a", 80)])
    log.write_lines([line("b", 80)])
    log.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def rotate_n(path: Path, clock: Clock, count: int, **options: object) -> None:
    """`count` rotations, one minute apart."""
    log = rotating(path, clock, max_size_mb=1, **options)
    for i in range(count + 1):
        log.write_lines([line(chr(ord("a") + i), 80)])
        clock.now += 60
    log.close()


def test_max_backups_keeps_the_newest(tmp_path: Path) -> None:
    rotate_n(tmp_path / "audit.log", Clock(), 4, max_backups=2)
    assert names(tmp_path) == [
        "audit-2024-05-01T10-03-00.000.log",
        "audit-2024-05-01T10-04-00.000.log",
        "audit.log",
    ]


def test_max_age_removes_old_backups(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    (tmp_path / "audit-2024-04-20T10-00-00.000.log").write_text("old\n")
    (tmp_path / "audit-2024-04-30T10-00-00.000.log").write_text("recent\n")
    (tmp_path / "other-2024-04-01T10-00-00.000.log").write_text("not ours\n")
    (tmp_path / "audit-notatime.log").write_text("not a backup\n")
    rotate_n(path, Clock(), 1, max_age_days=7)
    assert names(tmp_path) == [
        "audit-2024-04-30T10-00-00.000.log",
        "audit-2024-05-01T10-01-00.000.log",
        "audit-notatime.log",
        "audit.log",
        "other-2024-04-01T10-00-00.000.log",
    ]


def test_compress_gzips_backups(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    rotate_n(path, Clock(), 2, compress=True)
    assert names(tmp_path) == [
        "audit-2024-05-01T10-01-00.000.log.gz",
        "audit-2024-05-01T10-02-00.000.log.gz",
        "audit.log",
    ]
    assert gzip.decompress(
        (tmp_path / "audit-2024-05-01T10-01-00.000.log.gz").read_bytes()
    ) == line("a", 80)


def test_compressed_and_plain_copies_count_once(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    for minute in (1, 2):
        stamp = f"2024-04-30T10-0{minute}-00.000"
        (tmp_path / f"audit-{stamp}.log").write_text("plain\n")
        (tmp_path / f"audit-{stamp}.log.gz").write_bytes(gzip.compress(b"plain\n"))
    rotate_n(path, Clock(), 1, max_backups=2)
    assert names(tmp_path) == [
        "audit-2024-04-30T10-02-00.000.log",
        "audit-2024-04-30T10-02-00.000.log.gz",
        "audit-2024-05-01T10-01-00.000.log",
        "audit.log",
    ]


def test_mill_runs_in_the_background(tmp_path: Path) -> None:
    log = RotatingFile(str(tmp_path / "audit.log"), max_size_mb=1, compress=True, megabyte=MB)
    log.write_lines([line("a", 80)])
    log.write_lines([line("b", 80)])
    deadline = time.monotonic() + 10
    while not any(n.endswith(".gz") for n in names(tmp_path)):
        assert time.monotonic() < deadline, names(tmp_path)
        time.sleep(0.01)
    log.close()


def test_ensure_log_file_creates_private_file_and_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "audit.log"
    ensure_log_file(str(path))
    assert path.exists() and path.read_bytes() == b""
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    with pytest.raises(OSError):
        ensure_log_file(str(path / "not-a-dir" / "audit.log"))


# --- the backend ---------------------------------------------------------------------------


def event(n: int, **changes: object) -> Event:
    fields: dict[str, object] = {
        "level": Level.METADATA,
        "audit_id": f"id-{n}",
        "stage": Stage.RESPONSE_COMPLETE,
        "request_uri": f"/apis/x/{n}",
        "verb": "get",
        "user": None,
        "source_ips": ("127.0.0.1",),
        "user_agent": "test",
        "object_ref": None,
        "request_received_ns": 1714557600_000000000,
        "stage_ns": 1714557600_000001000,
        "response_status": {"metadata": {}, "code": 200},
    }
    fields.update(changes)
    return Event(**fields)  # type: ignore[arg-type]


async def test_json_lines_in_order_from_concurrent_writers(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    backend = LogBackend(
        ThreadedWriter(RotatingFile(str(path))), "json", AuditMetrics(CollectorRegistry())
    )
    results = await asyncio.gather(*(backend.process([event(n)]) for n in range(200)))
    await backend.shutdown()
    assert all(results)
    lines = path.read_bytes().splitlines()
    assert [orjson.loads(raw)["auditID"] for raw in lines] == [f"id-{n}" for n in range(200)]


async def test_legacy_format(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    backend = LogBackend(
        ThreadedWriter(RotatingFile(str(path))), "legacy", AuditMetrics(CollectorRegistry())
    )
    assert await backend.process([event(1)])
    await backend.shutdown()
    text = path.read_text()
    assert (
        text.endswith('uri="/apis/x/1" response="200"\n')
        and ' AUDIT: id="id-1" stage="ResponseComplete" ' in text
    )


async def test_write_failures_are_reported_and_counted(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    path = tmp_path / "audit.log"
    log = RotatingFile(str(path), max_size_mb=1, megabyte=MB)
    backend = LogBackend(ThreadedWriter(log), "json", AuditMetrics(registry))
    assert not await backend.process([event(1)])  # an event is far over 100 bytes
    await backend.shutdown()
    assert registry.get_sample_value("apiserver_audit_error_total", {"plugin": "log"}) == 1


async def test_stdout_lines(tmp_path: Path) -> None:
    read_fd, write_fd = os.pipe()
    try:
        backend = LogBackend(
            ThreadedWriter(StdoutLines(write_fd)), "json", AuditMetrics(CollectorRegistry())
        )
        assert await backend.process([event(1), event(2)])
        await backend.shutdown()
        data = os.read(read_fd, 1 << 16)
    finally:
        os.close(read_fd)
        os.close(write_fd)
    assert [orjson.loads(raw)["auditID"] for raw in data.splitlines()] == ["id-1", "id-2"]
