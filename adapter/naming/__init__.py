"""From rules to metrics: series filters, metric names, label ↔ resource association, queries."""
