"""Kubernetes audit logging, as k8s.io/apiserver does it for the Go adapter: an audit.k8s.io/v1
Policy decides per request what is recorded; events go to a log file (or stdout) and/or a
webhook. Off unless `--audit-policy-file` and a backend flag are given.

Modules: `policy` (load, validate, evaluate), `event` (the Event and its JSON and legacy forms),
`middleware` (the filters around authentication and authorization), `log`, `rotate`,
`webhook`, `buffered`, `backend` (the backends and their wrappers), `config` (the flags).
"""

from adapter.audit.config import AuditConfigError, build_auditor
from adapter.audit.middleware import Auditor, audit_chain, audit_decisions

__all__ = ["AuditConfigError", "Auditor", "audit_chain", "audit_decisions", "build_auditor"]
