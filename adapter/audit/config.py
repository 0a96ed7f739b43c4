"""The --audit-* flags, validated and applied as k8s.io/apiserver's AuditOptions does
(pkg/server/options/audit.go, Validate and ApplyTo):

- a backend's flags are checked only when the backend is on (`--audit-log-path`,
  `--audit-webhook-config-file`), every error reported at once;
- the policy file is loaded first; without one no event is recorded, whatever the backends
  (the log file is still created, as `ensureLogFile` runs before that check);
- each backend is wrapped for its mode (batch: buffered; blocking: errors ignored;
  blocking-strict: errors fail the request), then for truncation when enabled.
"""

import argparse
import logging
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from adapter.audit.backend import Backend, IgnoreErrorsBackend, TruncatingBackend, UnionBackend
from adapter.audit.buffered import BatchConfig, BufferedBackend
from adapter.audit.event import API_VERSION
from adapter.audit.log import FORMATS, LogBackend, StdoutLines, ThreadedWriter
from adapter.audit.metrics import AuditMetrics
from adapter.audit.middleware import Auditor
from adapter.audit.policy import Policy, PolicyError, load_policy
from adapter.audit.rotate import RotatingFile, ensure_log_file
from adapter.audit.webhook import Backoff, WebhookBackend, WebhookClient
from adapter.golang.quote import go_quote
from adapter.kube.config import KubeConfigError

__all__ = [
    "AuditConfigError",
    "AuditOptions",
    "BackendOptions",
    "audit_flag_errors",
    "audit_options",
    "build_auditor",
]

log = logging.getLogger("adapter.audit")

MODES = ("batch", "blocking", "blocking-strict")


class AuditConfigError(ValueError):
    """The audit flags or files cannot be used; the server must not start."""


@dataclass(frozen=True, slots=True)
class BackendOptions:
    """The mode, batch, truncate and version flags one backend (log or webhook) has."""

    plugin: str
    mode: str
    batch: BatchConfig
    truncate_enabled: bool
    truncate_max_event_size: int
    truncate_max_batch_size: int
    version: str


@dataclass(frozen=True, slots=True)
class AuditOptions:
    policy_file: str
    log_path: str
    log_max_age: int
    log_max_backups: int
    log_max_size: int
    log_format: str
    log_compress: bool
    log: BackendOptions
    webhook_config_file: str
    webhook_initial_backoff: float
    webhook: BackendOptions


def _backend_options(args: argparse.Namespace, plugin: str) -> BackendOptions:
    def flag(name: str) -> Any:
        return getattr(args, f"audit_{plugin}_{name}")

    return BackendOptions(
        plugin=plugin,
        mode=str(flag("mode")),
        batch=BatchConfig(
            buffer_size=int(flag("batch_buffer_size")),
            max_batch_size=int(flag("batch_max_size")),
            max_batch_wait=float(flag("batch_max_wait")),
            throttle_enable=bool(flag("batch_throttle_enable")),
            throttle_qps=float(flag("batch_throttle_qps")),
            throttle_burst=int(flag("batch_throttle_burst")),
            # defaultLogBatchConfig: "Asynchronous log threads just create lock contention."
            async_delegate=plugin == "webhook",
        ),
        truncate_enabled=bool(flag("truncate_enabled")),
        truncate_max_event_size=int(flag("truncate_max_event_size")),
        truncate_max_batch_size=int(flag("truncate_max_batch_size")),
        version=str(flag("version")),
    )


def audit_options(args: argparse.Namespace) -> AuditOptions:
    """The audit settings of parsed flags (adapter.options)."""
    return AuditOptions(
        policy_file=args.audit_policy_file,
        log_path=args.audit_log_path,
        log_max_age=args.audit_log_maxage,
        log_max_backups=args.audit_log_maxbackup,
        log_max_size=args.audit_log_maxsize,
        log_format=args.audit_log_format,
        log_compress=args.audit_log_compress,
        log=_backend_options(args, "log"),
        webhook_config_file=args.audit_webhook_config_file,
        webhook_initial_backoff=args.audit_webhook_initial_backoff,
        webhook=_backend_options(args, "webhook"),
    )


def _go_number(value: float) -> str:
    """fmt's %v of a number: 10 rather than 10.0."""
    text = f"{value:g}"
    return text if float(text) == value else repr(value)


def _backend_errors(options: BackendOptions) -> list[str]:
    """validateBackendBatchOptions, AuditTruncateOptions.Validate, validateGroupVersionString."""
    errors = []
    plugin, batch = options.plugin, options.batch
    if options.mode not in MODES:
        errors.append(
            f"invalid audit {plugin} mode {options.mode}, allowed modes are "
            f"{go_quote(','.join(MODES))}"
        )
    elif options.mode == "batch":
        if batch.buffer_size <= 0:
            errors.append(
                f"invalid audit batch {plugin} buffer size {batch.buffer_size}, "
                "must be a positive number"
            )
        elif batch.max_batch_size <= 0:
            errors.append(
                f"invalid audit batch {plugin} max batch size {batch.max_batch_size}, "
                "must be a positive number"
            )
        elif batch.throttle_enable and batch.throttle_qps <= 0:
            errors.append(
                f"invalid audit batch {plugin} throttle QPS {_go_number(batch.throttle_qps)}, "
                "must be a positive number"
            )
        elif batch.throttle_enable and batch.throttle_burst <= 0:
            errors.append(
                f"invalid audit batch {plugin} throttle burst {batch.throttle_burst}, "
                "must be a positive number"
            )
    if options.truncate_max_event_size <= 0:
        errors.append(
            f"invalid audit truncate {plugin} max event size {options.truncate_max_event_size}, "
            "must be a positive number"
        )
    elif options.truncate_max_batch_size < options.truncate_max_event_size:
        errors.append(
            f"invalid audit truncate {plugin} max batch size {options.truncate_max_batch_size}, "
            f"must be greater than max event size ({options.truncate_max_event_size})"
        )
    if options.version.count("/") > 1:
        errors.append(f"unexpected GroupVersion string: {options.version}")
    elif options.version != API_VERSION:
        # Only audit.k8s.io/v1 is left in k8s.io/apiserver's knownGroupVersions.
        errors.append(f"invalid group version, allowed versions are [{go_quote(API_VERSION)}]")
    return errors


def audit_flag_errors(options: AuditOptions) -> list[str]:
    """AuditOptions.Validate: the flag errors, each a line (empty: the flags are usable)."""
    errors: list[str] = []
    if options.log_path:
        errors.extend(_backend_errors(options.log))
        if options.log_format not in FORMATS:
            errors.append(
                f"invalid audit log format {options.log_format}, allowed formats are "
                f"{go_quote(','.join(FORMATS))}"
            )
        for flag, value in (
            ("maxage", options.log_max_age),
            ("maxbackup", options.log_max_backups),
            ("maxsize", options.log_max_size),
        ):
            if value < 0:
                errors.append(f"--audit-log-{flag} {value} can't be a negative number")
    if options.webhook_config_file:
        errors.extend(_backend_errors(options.webhook))
    return errors


def _wrap(backend: Backend, options: BackendOptions, metrics: AuditMetrics) -> Backend:
    """wrapBackend for the mode, then the truncate plugin (outermost, as in Go)."""
    if options.mode == "blocking":
        backend = IgnoreErrorsBackend(backend)
    elif options.mode == "batch":
        backend = BufferedBackend(backend, options.batch, metrics)
    if options.truncate_enabled:
        backend = TruncatingBackend(
            backend, options.truncate_max_event_size, options.truncate_max_batch_size, metrics
        )
    return backend


def _log_backend(options: AuditOptions, metrics: AuditMetrics) -> Backend:
    if options.log_path == "-":
        sink: StdoutLines | RotatingFile = StdoutLines()
    else:
        sink = RotatingFile(
            options.log_path,
            max_size_mb=options.log_max_size,
            max_backups=options.log_max_backups,
            max_age_days=options.log_max_age,
            compress=options.log_compress,
        )
    backend = LogBackend(ThreadedWriter(sink), options.log_format, metrics)
    return _wrap(backend, options.log, metrics)


def _webhook_backend(options: AuditOptions, metrics: AuditMetrics) -> Backend:
    try:
        client = WebhookClient.from_kubeconfig(options.webhook_config_file)
    except KubeConfigError as exc:
        raise AuditConfigError(f"initializing audit webhook: {exc}") from None
    backend = WebhookBackend(
        client.post_raw,
        Backoff(initial=options.webhook_initial_backoff),
        metrics,
        close=client.close,
    )
    return _wrap(backend, options.webhook, metrics)


def build_auditor(
    args: argparse.Namespace, registry: CollectorRegistry, *, verbosity: int = 0
) -> Auditor | None:
    """AuditOptions.Validate then ApplyTo. None when nothing is to be audited (no policy, or
    no backend): then no audit middleware is installed. Raises AuditConfigError."""
    options = audit_options(args)
    errors = audit_flag_errors(options)
    if errors:
        raise AuditConfigError("\n".join(errors))
    policy: Policy | None = None
    if options.policy_file:
        try:
            policy = load_policy(options.policy_file)
        except PolicyError as exc:
            raise AuditConfigError(str(exc)) from None
    if options.log_path and options.log_path != "-":
        try:
            ensure_log_file(options.log_path)
        except OSError as exc:
            raise AuditConfigError(f"ensureLogFile: {exc}") from None
    if policy is None:
        if verbosity >= 2:  # klog.V(2)
            for name, enabled in (
                ("log", options.log_path),
                ("webhook", options.webhook_config_file),
            ):
                if enabled:
                    log.info(
                        "No audit policy file provided, no events will be recorded for %s backend",
                        name,
                    )
        return None
    metrics = AuditMetrics(registry)
    backends = []
    if options.log_path:
        backends.append(_log_backend(options, metrics))
    webhook = options.webhook_config_file
    if webhook:
        backends.append(_webhook_backend(options, metrics))
    if not backends:
        return None
    backend = backends[0] if len(backends) == 1 else UnionBackend(backends)
    if verbosity >= 2:
        names = [name for name, on in (("log", options.log_path), ("webhook", webhook)) if on]
        log.info("Using audit backends: %s", ", ".join(names))
    return Auditor(policy, backend, metrics)
