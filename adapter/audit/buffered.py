"""Mode `batch` (plugin/pkg/audit/buffered): events go into a bounded buffer and return at once;
a background task sends them on in batches of at most `max_batch_size`, at the latest
`max_batch_wait` after a batch was started, throttled to `throttle_qps` batches per second
(bursts of `throttle_burst`). A full buffer drops the event and reports it; the request never
waits and never fails because of the backend.
"""

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from adapter.audit.backend import Backend
from adapter.audit.event import Event
from adapter.audit.metrics import AuditMetrics
from adapter.kube.client import TokenBucket

__all__ = ["BatchConfig", "BufferedBackend"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BatchConfig:
    buffer_size: int = 10000
    max_batch_size: int = 400
    max_batch_wait: float = 30.0
    throttle_enable: bool = True
    throttle_qps: float = 10.0
    throttle_burst: int = 15
    # Each batch in its own task (the webhook), or one after the other (the log file, where
    # concurrent writers would only contend).
    async_delegate: bool = True


class BufferedBackend:
    name = "buffered"

    def __init__(
        self,
        delegate: Backend,
        config: BatchConfig,
        metrics: AuditMetrics,
        *,
        shutdown_timeout: float = 30.0,
    ) -> None:
        self._delegate = delegate
        self._config = config
        self._metrics = metrics
        self._shutdown_timeout = shutdown_timeout
        self._buffer: deque[Event] = deque()
        self._throttle = (
            TokenBucket(config.throttle_qps, config.throttle_burst)
            if config.throttle_enable
            else None
        )
        self._arrived: asyncio.Event | None = None
        self._stopping = False
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._delegate.start()
        self._arrived = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="audit-batches")

    async def process(self, events: Sequence[Event]) -> bool:
        if self._closed:
            self._metrics.plugin_error(self.name, "the audit backend is shut down", events)
            return True
        for i, event in enumerate(events):
            if len(self._buffer) >= self._config.buffer_size:
                self._metrics.plugin_error(self.name, "audit buffer queue blocked", events[i:])
                break
            self._buffer.append(event)
        if self._arrived is not None:
            self._arrived.set()
        # Go's buffered backend reports success even when it dropped events.
        return True

    async def _run(self) -> None:
        while not self._stopping:
            batch = await self._collect()
            if batch:
                await self._send(batch)
        # Drain what is left, without waiting for more.
        while self._buffer:
            await self._send(self._take(self._config.max_batch_size))

    def _take(self, limit: int) -> list[Event]:
        count = min(limit, len(self._buffer))
        return [self._buffer.popleft() for _ in range(count)]

    async def _collect(self) -> list[Event]:
        """A batch: `max_batch_size` events, or what arrived within `max_batch_wait` of the
        first one (Go times the window from the start of each round; waiting for the first
        event instead keeps an idle backend from spinning and bounds the delay the same)."""
        assert self._arrived is not None
        if not self._buffer:
            self._arrived.clear()
            await self._arrived.wait()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._config.max_batch_wait
        batch: list[Event] = []
        while not self._stopping:
            batch.extend(self._take(self._config.max_batch_size - len(batch)))
            remaining = deadline - loop.time()
            if len(batch) >= self._config.max_batch_size or remaining <= 0:
                break
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)
        return batch

    async def _send(self, batch: list[Event]) -> None:
        if self._throttle is not None:
            await self._throttle.acquire()
        if not self._config.async_delegate:
            await self._deliver(batch)
            return
        task = asyncio.get_running_loop().create_task(self._deliver(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _deliver(self, batch: list[Event]) -> None:
        # Go recovers from a crashing delegate (runtime.HandleCrash) and goes on batching.
        try:
            await self._delegate.process(batch)
        except Exception as exc:
            log.exception("audit backend %s failed", self._delegate.name)
            self._metrics.plugin_error(self._delegate.name, exc, batch)

    async def shutdown(self) -> None:
        """Send everything buffered and wait for the sends in flight, for at most
        `shutdown_timeout` (what is unsent then is reported as dropped)."""
        self._stopping = True
        self._closed = True
        if self._arrived is not None:
            self._arrived.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._shutdown_timeout
        try:
            if self._task is not None:
                await asyncio.wait_for(asyncio.shield(self._task), deadline - loop.time())
            if self._sending:
                await asyncio.wait_for(
                    asyncio.gather(*self._sending, return_exceptions=True),
                    max(0.0, deadline - loop.time()),
                )
        except TimeoutError:
            log.error(
                "audit backend %s: events still unsent %gs after shutdown began; dropping them",
                self._delegate.name,
                self._shutdown_timeout,
            )
            unfinished = [t for t in (self._task, *self._sending) if t is not None and not t.done()]
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
            if self._buffer:
                self._metrics.plugin_error(self.name, "dropped at shutdown", list(self._buffer))
                self._buffer.clear()
        await self._delegate.shutdown()
