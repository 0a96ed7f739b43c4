"""Audit levels and stages (k8s.io/apiserver pkg/apis/audit/v1/types.go)."""

from enum import StrEnum

__all__ = ["Level", "Stage"]


class Level(StrEnum):
    """How much of a request is recorded; each level includes the ones before it."""

    NONE = "None"
    METADATA = "Metadata"
    REQUEST = "Request"
    REQUEST_RESPONSE = "RequestResponse"

    def at_least(self, other: "Level") -> bool:
        """Go's `Level.GreaterOrEqual`."""
        return _ORDER[self] >= _ORDER[other]


_ORDER = {level: i for i, level in enumerate(Level)}


class Stage(StrEnum):
    """The point of request handling at which an event is written."""

    REQUEST_RECEIVED = "RequestReceived"
    # Only for long-running requests (watch, exec); this adapter serves none.
    RESPONSE_STARTED = "ResponseStarted"
    RESPONSE_COMPLETE = "ResponseComplete"
    PANIC = "Panic"
