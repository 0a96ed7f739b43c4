"""The log backend (plugin/pkg/audit/log): one line per event, `json` (the Event as JSON) or
`legacy` (pkg/audit/format.go's text), to a rotated file or, for the path "-", to stdout.

Disk writes never run on the event loop: events are encoded in the loop (cheap) and written
by one background thread, in order; lines that arrive while a write is in progress go out
together in the next one, so a busy server pays one thread hand-off per group, not per event.
"""

import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from adapter.audit.event import Event, legacy_line
from adapter.audit.metrics import AuditMetrics

__all__ = ["FORMATS", "LineSink", "LogBackend", "StdoutLines", "ThreadedWriter"]

log = logging.getLogger(__name__)

FORMATS = ("legacy", "json")


class LineSink(Protocol):
    """Blocking line output (a RotatingFile, stdout)."""

    def write_lines(self, lines: Sequence[bytes]) -> list[Exception | None]: ...

    def close(self) -> None: ...


class StdoutLines:
    """Go writes to os.Stdout unbuffered: each line is out when the write returns."""

    def __init__(self, fd: int | None = None) -> None:
        self._fd = fd

    def write_lines(self, lines: Sequence[bytes]) -> list[Exception | None]:
        fd = self._fd if self._fd is not None else sys.stdout.fileno()
        data = memoryview(b"".join(lines))
        try:
            while data:
                data = data[os.write(fd, data) :]
        except OSError as exc:
            return [exc] * len(lines)
        return [None] * len(lines)

    def close(self) -> None:
        pass


class ThreadedWriter:
    """Hands lines to a LineSink in one background thread, in order (group commit)."""

    def __init__(self, sink: LineSink) -> None:
        self._sink = sink
        self._executor: ThreadPoolExecutor | None = None
        self._pending: list[tuple[Sequence[bytes], asyncio.Future[list[Exception | None]]]] = []
        self._drain: asyncio.Task[None] | None = None

    async def write(self, lines: Sequence[bytes]) -> list[Exception | None]:
        """Write the lines; the error of each (None: written)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[list[Exception | None]] = loop.create_future()
        self._pending.append((lines, done))
        if self._drain is None or self._drain.done():
            self._drain = loop.create_task(self._drain_pending())
        # Shielded: a cancelled request must not lose lines already handed over.
        return await asyncio.shield(done)

    async def _drain_pending(self) -> None:
        loop = asyncio.get_running_loop()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="audit-log")
        while self._pending:
            group, self._pending = self._pending, []
            lines = [line for chunk, _ in group for line in chunk]
            try:
                results = await loop.run_in_executor(self._executor, self._sink.write_lines, lines)
            except Exception as exc:  # a broken sink must not lose the waiters
                results = [exc] * len(lines)
            offset = 0
            for chunk, done in group:
                if not done.done():
                    done.set_result(results[offset : offset + len(chunk)])
                offset += len(chunk)

    async def close(self) -> None:
        if self._drain is not None:
            await asyncio.shield(self._drain)
        executor, self._executor = self._executor, None
        loop = asyncio.get_running_loop()
        if executor is None:
            self._sink.close()
            return
        await loop.run_in_executor(executor, self._sink.close)
        executor.shutdown(wait=True)


class LogBackend:
    name = "log"

    def __init__(self, writer: ThreadedWriter, log_format: str, metrics: AuditMetrics) -> None:
        if log_format not in FORMATS:
            raise ValueError(f"unknown audit log format {log_format!r}")
        self._writer = writer
        self._legacy = log_format == "legacy"
        self._metrics = metrics

    def start(self) -> None:
        pass

    def _line(self, event: Event) -> bytes:
        if self._legacy:
            return legacy_line(event).encode("utf-8", "replace") + b"\n"
        return event.json + b"\n"

    async def process(self, events: Sequence[Event]) -> bool:
        results = await self._writer.write([self._line(event) for event in events])
        success = True
        for event, error in zip(events, results, strict=True):
            if error is not None:
                success = False
                self._metrics.plugin_error(self.name, error, [event])
        return success

    async def shutdown(self) -> None:
        await self._writer.close()
