"""k8s.io/apiserver's audit metrics (pkg/audit/metrics.go), same names and help, and its
plugin error report (HandlePluginError)."""

import logging
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter

from adapter.audit.event import Event, legacy_line
from adapter.audit.levels import Level

__all__ = ["AuditMetrics"]

log = logging.getLogger("adapter.audit")


class AuditMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "apiserver_audit_event_total",
            "Counter of audit events generated and sent to the audit backend.",
            registry=registry,
        )
        self.errors = Counter(
            "apiserver_audit_error_total",
            "Counter of audit events that failed to be audited properly. "
            "Plugin identifies the plugin affected by the error.",
            ["plugin"],
            registry=registry,
        )
        self.levels = Counter(
            "apiserver_audit_level_total",
            "Counter of policy levels for audit events (1 per request).",
            ["level"],
            registry=registry,
        )
        self.rejected = Counter(
            "apiserver_audit_requests_rejected_total",
            "Counter of apiserver requests rejected due to an error in audit logging backend.",
            registry=registry,
        )
        # Resolved once: label lookups cost more than the increments on the request path.
        self._level_children = {level: self.levels.labels(level.value) for level in Level}

    def observe_level(self, level: Level) -> None:
        self._level_children[level].inc()

    def plugin_error(self, plugin: str, error: object, events: Sequence[Event]) -> None:
        """audit.HandlePluginError: count the events and log them in the legacy format."""
        self.errors.labels(plugin).inc(len(events))
        lines = "".join(legacy_line(event) + "\n" for event in events)
        log.error(
            "Error in audit plugin '%s' affecting %d audit events: %s\nImpacted events:\n%s",
            plugin,
            len(events),
            error,
            lines,
        )
