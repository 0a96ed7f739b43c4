"""What an audit backend is, and the wrappers k8s.io/apiserver puts around one
(pkg/audit/union.go, server/options/audit.go's ignoreErrorsBackend, plugin/pkg/audit/truncate).

`process` returns whether every event was stored: only `blocking-strict` lets that fail a
request (a RequestReceived event that could not be stored answers 500).
"""

from collections.abc import Sequence
from typing import Protocol

from adapter.audit.event import Event
from adapter.audit.levels import Level
from adapter.audit.metrics import AuditMetrics

__all__ = [
    "Backend",
    "IgnoreErrorsBackend",
    "TruncatingBackend",
    "UnionBackend",
]


class Backend(Protocol):
    name: str

    def start(self) -> None:
        """Start background work (in the running event loop), before the first event."""

    async def process(self, events: Sequence[Event]) -> bool:
        """Store the events; whether all of them were stored."""
        ...

    async def shutdown(self) -> None:
        """Deliver what is pending, then release files and connections."""


class IgnoreErrorsBackend:
    """Mode `blocking`: the request waits for the backend, but a failure does not fail it."""

    def __init__(self, delegate: Backend) -> None:
        self._delegate = delegate
        self.name = delegate.name

    def start(self) -> None:
        self._delegate.start()

    async def process(self, events: Sequence[Event]) -> bool:
        await self._delegate.process(events)
        return True

    async def shutdown(self) -> None:
        await self._delegate.shutdown()


class UnionBackend:
    """Every backend gets every event, one after the other."""

    name = "union"

    def __init__(self, backends: Sequence[Backend]) -> None:
        self._backends = tuple(backends)

    def start(self) -> None:
        for backend in self._backends:
            backend.start()

    async def process(self, events: Sequence[Event]) -> bool:
        success = True
        for backend in self._backends:
            success = await backend.process(events) and success
        return success

    async def shutdown(self) -> None:
        for backend in self._backends:
            await backend.shutdown()


class TruncatingBackend:
    """plugin/pkg/audit/truncate: an event over `max_event_size` bytes (as JSON, with its
    newline) loses its request and response objects and is annotated
    `audit.k8s.io/truncated: "true"`; still too large, it is dropped and reported. Events are
    passed on in batches of at most `max_batch_size` bytes."""

    name = "truncate"

    def __init__(
        self, delegate: Backend, max_event_size: int, max_batch_size: int, metrics: AuditMetrics
    ) -> None:
        self._delegate = delegate
        self._max_event = max_event_size
        self._max_batch = max_batch_size
        self._metrics = metrics

    def start(self) -> None:
        self._delegate.start()

    async def process(self, events: Sequence[Event]) -> bool:
        success = True
        batch: list[Event] = []
        batch_size = 0
        dropped: list[Event] = []
        for event in events:
            size = len(event.json) + 1
            if size > self._max_event and event.level.at_least(Level.REQUEST):
                event = event.truncated()
                size = len(event.json) + 1
            if size > self._max_event:
                dropped.append(event)
                continue
            if batch and batch_size + size > self._max_batch:
                success = await self._delegate.process(batch) and success
                batch, batch_size = [], 0
            batch.append(event)
            batch_size += size
        if batch:
            success = await self._delegate.process(batch) and success
        if dropped:
            self._metrics.plugin_error(
                self.name, "event is too large even after truncating", dropped
            )
        return success

    async def shutdown(self) -> None:
        await self._delegate.shutdown()
