"""Command-line flags: every flag of the Go adapter, with its name, type and default.

The Go adapter parses its command line with spf13/pflag; `parse_flags` does the same
(adapter.flagparse: positional words ignored, `-v 4`, bools, CSV string slices, Go's number
and duration syntax, pflag's error messages). A flag it knows and we rejected would crash-loop
a pod that switches over, so every Go flag is accepted, and every one that changes the Go
adapter's behaviour does the same here. The few that cannot matter to this adapter (Go's
runtime profiler, HTTP/2 tuning) say why in `FlagSpec.no_effect` and in the help text. klog's
own flags, which the Go adapter dropped in v0.11, are accepted too and ignored with a warning
(`KLOG_LEGACY_FLAGS`); so is a deprecated alias k8s.io/apiserver still registers
(`DEPRECATED_ALIASES`).
"""

import argparse
import importlib.util
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from adapter.audit.config import audit_flag_errors, audit_options
from adapter.discovery.relister import DISCOVERY_MODES
from adapter.flagparse import parse
from adapter.golang.duration import format_go_duration
from adapter.prometheus.config import (
    DEFAULT_MAX_RESPONSE_SIZE,
    PrometheusConfig,
    format_size,
    parse_header_flags,
    parse_size,
)

__all__ = [
    "FLAGS",
    "KLOG_LEGACY_FLAGS",
    "FlagSpec",
    "build_parser",
    "parse_flags",
    "prometheus_config",
    "validate_flags",
]


@dataclass(frozen=True, slots=True)
class FlagSpec:
    name: str
    # How Go parses the value (adapter.flagparse): string, bool, int, float, duration,
    # stringSlice, stringArray; level (klog's -v); uint, severity, traceLocation (klog).
    kind: str
    default: Any
    help: str
    group: str
    # Why the flag cannot matter here ("" for a flag that works); shown in --help and docs.
    no_effect: str = ""

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    def default_text(self) -> str:
        if self.kind == "duration":
            return format_go_duration(self.default)
        if self.kind in ("stringSlice", "stringArray"):
            return "[" + ",".join(self.default) + "]"
        if self.kind == "bool":
            return str(self.default).lower()
        return str(self.default)


def _flag(
    name: str,
    kind: str,
    default: Any,
    help: str,
    group: str,
    no_effect: str = "",
) -> FlagSpec:
    return FlagSpec(name, kind, default, help, group, no_effect)


_NO_HTTP2 = "this adapter serves HTTP/1.1 only (as kube-apiserver's aggregator and the HPA speak it), so there is no HTTP/2 to turn off or tune"
_NO_PPROF = "the Go adapter serves the Go runtime's pprof profiles; a Python process has no Go runtime, and no profiling endpoint is served, with or without the flag"
_PROM, _LOG, _KUBE, _SERVE = "Prometheus", "Logging", "Kubernetes client", "Secure serving"
_AUTHN, _AUTHZ, _AUDIT, _FEAT = "Authentication", "Authorization", "Audit", "Features"


def _audit_backend_flags(backend: str, batch_default: int, batch_wait: float) -> list[FlagSpec]:
    """The batch and truncate options k8s.io/apiserver defines for each audit backend."""
    p = f"audit-{backend}"
    return [
        _flag(f"{p}-batch-buffer-size", "int", 10000, "The size of the buffer to store events before batching and writing.", _AUDIT),
        _flag(f"{p}-batch-max-size", "int", batch_default, "The maximum size of a batch.", _AUDIT),
        _flag(f"{p}-batch-max-wait", "duration", batch_wait, "The amount of time to wait before force writing the batch that hadn't reached the max size.", _AUDIT),
        _flag(f"{p}-batch-throttle-burst", "int", 15 if backend == "webhook" else 0, "Maximum number of requests sent at the same moment if ThrottleQPS was not utilized before.", _AUDIT),
        _flag(f"{p}-batch-throttle-enable", "bool", backend == "webhook", "Whether batching throttling is enabled.", _AUDIT),
        _flag(f"{p}-batch-throttle-qps", "float", 10.0 if backend == "webhook" else 0.0, "Maximum average number of batches per second.", _AUDIT),
        _flag(f"{p}-truncate-enabled", "bool", False, "Whether event and batch truncating is enabled.", _AUDIT),
        _flag(f"{p}-truncate-max-batch-size", "int", 10485760, "Maximum size of the batch sent to the underlying backend.", _AUDIT),
        _flag(f"{p}-truncate-max-event-size", "int", 102400, "Maximum size of the audit event sent to the underlying backend.", _AUDIT),
        _flag(f"{p}-version", "string", "audit.k8s.io/v1", "API group and version used for serializing audit events.", _AUDIT),
    ]  # fmt: skip


FLAGS: tuple[FlagSpec, ...] = (
    # The adapter's own flags (cmd/adapter/adapter.go).
    _flag("config", "string", "", "Configuration file containing details of how to transform between Prometheus metrics and custom metrics API resources", "Adapter"),
    _flag("metrics-relist-interval", "duration", 600.0, "interval at which to re-list the set of all available metrics from Prometheus", "Adapter"),
    _flag("metrics-max-age", "duration", 0.0, "period for which to query the set of available metrics from Prometheus (0 means the relist interval)", "Adapter"),
    _flag("prometheus-url", "string", "https://localhost", "URL for connecting to Prometheus.", _PROM),
    _flag("prometheus-auth-incluster", "bool", False, "use auth details from the in-cluster kubeconfig when connecting to prometheus.", _PROM),
    _flag("prometheus-auth-config", "string", "", "kubeconfig file used to configure auth when connecting to Prometheus.", _PROM),
    _flag("prometheus-ca-file", "string", "", "Optional CA file to use when connecting with Prometheus", _PROM),
    _flag("prometheus-client-tls-cert-file", "string", "", "Optional client TLS cert file to use when connecting with Prometheus, auto-renewal is not supported", _PROM),
    _flag("prometheus-client-tls-key-file", "string", "", "Optional client TLS key file to use when connecting with Prometheus, auto-renewal is not supported", _PROM),
    _flag("prometheus-token-file", "string", "", "Optional file containing the bearer token to use when connecting with Prometheus", _PROM),
    _flag("prometheus-header", "stringArray", [], "Optional header to set on requests to prometheus servers (Key=Value, repeatable)", _PROM),
    _flag("prometheus-verb", "string", "GET", 'HTTP verb to set on requests to Prometheus. Possible values: "GET", "POST"', _PROM),
    _flag("disable-http2", "bool", False, "Disable HTTP/2 support", _SERVE, _NO_HTTP2),
    _flag("version", "bool", False, "Print this adapter's version, the Go adapter version it stands in for, Python's version and the platform, and exit. Not in the Go adapter.", "Adapter"),
    _flag("no-cluster", "bool", False, "Run without a Kubernetes cluster, for local use and demos: the objects of `*` requests are those Prometheus has series for, resources come from a built-in table, and there is NO authentication or authorization, so the server binds to 127.0.0.1 unless --bind-address is given. Not in the Go adapter.", "Adapter"),
    _flag("prometheus-timeout", "duration", 10.0, "Timeout of one request to Prometheus; also sent as the query's timeout parameter. Not in the Go adapter (which has no timeout).", _PROM),
    _flag("prometheus-max-get-url-length", "int", 8192, "With --prometheus-verb=GET, a request to Prometheus whose URL would be longer than this many bytes is sent as POST instead, as proxies and Prometheus-compatible servers reject long URLs (414). 0 never switches. Not in the Go adapter.", _PROM),
    _flag("prometheus-max-matcher-length", "int", 4096, "Longest object matcher (the quoted regex alternation of object names, pod=~\"a|b|...\") in one query; a request over more objects is sent as several queries whose per-object results are merged. Applies to metricsQuery templates that aggregate by (<<.GroupBy>>); others are sent as one query. 0 never splits. Not in the Go adapter.", _PROM),
    _flag("prometheus-max-response-size", "string", format_size(DEFAULT_MAX_RESPONSE_SIZE), "Largest answer read from Prometheus, in bytes or as a quantity (64Mi, 1Gi, 500M). Past it the adapter stops reading, closes that connection and fails the request (a 500, with this flag in the log). The default is above any answer to an HPA's or kubectl top's query and keeps a runaway answer from exhausting memory; the streamed series listing of discovery is exempt, as its memory does not grow with its size. 0: no limit. Not in the Go adapter.", _PROM),
    _flag("shutdown-delay-duration", "duration", 0.0, "Time to delay the termination: after SIGTERM, /readyz fails at once while requests are still served normally for this long, so that load balancers and the aggregator stop sending first. Not in the Go adapter (kube-apiserver's flag).", _SERVE),
    _flag("discovery-mode", "string", "auto", 'How metric discovery reads Prometheus. "series": every series of each seriesQuery (the Go adapter\'s way; streamed, so memory stays flat). "label-names": the metric names of each seriesQuery, then each metric\'s label names (/api/v1/label/__name__/values and /api/v1/labels with match[]): the same metrics and resources for a fraction of Prometheus\' work. "auto": label names, after the first relist has checked that they agree with a series listing (a backend that ignores match[] on those endpoints falls back to series). Not in the Go adapter.', "Adapter"),
    _flag("event-loop", "string", "auto", 'The asyncio event loop: "uvloop" (faster TLS and sockets; install the uvloop extra), "asyncio" (the standard library\'s), or "auto" (uvloop when installed). Not in the Go adapter.', _SERVE),
    _flag("namespace-query-ttl", "duration", 0.0, "Opt-in shared queries: when positive, a request for a metric on objects of a namespace (pods/* or a named pod, for rules whose metricsQuery aggregates per object) is answered from one Prometheus query over the whole namespace, kept this long and filtered per request, so Prometheus load grows with distinct metrics and namespaces instead of with HPAs. Keep it well under the HPA sync period (15s), e.g. 5s. 0 (the default) queries per request, as the Go adapter. Not in the Go adapter.", _PROM),
    _flag("self-signed-cert-sans", "stringSlice", [], "Extra DNS names or IPs for the self-signed serving certificate generated in --cert-dir (besides localhost and 127.0.0.1), e.g. adapter.monitoring.svc. Not in the Go adapter.", _SERVE),
    _flag("request-header-timeout", "duration", 32.0, "How long a client has to send a request's line and headers: from the start of the connection (and as long again for its TLS handshake), or from the first byte of a further request on a kept-alive connection. A connection over it is closed without an answer. k8s.io/apiserver's ReadHeaderTimeout, 32s, which has no flag. Not in the Go adapter.", _SERVE),
    _flag("idle-connection-timeout", "duration", 90.0, "How long a kept-alive connection may wait for its next request before it is closed. k8s.io/apiserver's IdleTimeout, 90s, which has no flag. Not in the Go adapter.", _SERVE),
    _flag("max-connections", "int", 1024, "Most connections the secure port holds open at once, counting those still in their TLS handshake (each holds about 50 KB; 300 KB with --event-loop=asyncio). A connection past it is closed as soon as it is accepted, before any TLS handshake or answer; open connections are not affected. 0 means no limit. Not in the Go adapter (which has no limit).", _SERVE),
    # custom-metrics-apiserver AdapterBase.
    _flag("lister-kubeconfig", "string", "", "kubeconfig file pointing at the 'core' kubernetes server with enough rights to list any described objects", _KUBE),
    _flag("discovery-interval", "duration", 0.0, "interval at which to refresh API discovery information", _KUBE),
    _flag("client-qps", "float", 5.0, "maximum QPS for the client to kube-apiserver", _KUBE),
    _flag("client-burst", "int", 10, "maximum burst for the client to kube-apiserver", _KUBE),
    # k8s.io/apiserver SecureServingOptions.
    _flag("bind-address", "string", "0.0.0.0", "The IP address on which to listen for the --secure-port port.", _SERVE),
    _flag("secure-port", "int", 443, "The port on which to serve HTTPS with authentication and authorization. If 0, don't serve HTTPS at all.", _SERVE),
    _flag("cert-dir", "string", "apiserver.local.config/certificates", "The directory where the TLS certs are located. If --tls-cert-file and --tls-private-key-file are provided, this flag will be ignored.", _SERVE),
    _flag("tls-cert-file", "string", "", "File containing the default x509 Certificate for HTTPS.", _SERVE),
    _flag("tls-private-key-file", "string", "", "File containing the default x509 private key matching --tls-cert-file.", _SERVE),
    _flag("tls-cipher-suites", "stringSlice", [], "Comma-separated list of cipher suites for the server.", _SERVE),
    _flag("tls-min-version", "string", "", "Minimum TLS version supported. Possible values: VersionTLS12, VersionTLS13", _SERVE),
    _flag("tls-sni-cert-key", "stringArray", [], 'A pair of x509 certificate and private key file paths, optionally suffixed with a list of domain patterns which are fully qualified domain names, possibly with prefixed wildcard segments. The domain patterns also allow IP addresses, but IPs should only be used if the apiserver has visibility to the IP address requested by a client. If no domain patterns are provided, the names of the certificate are extracted. Non-wildcard matches trump over wildcard matches, explicit domain patterns trump over extracted names. For multiple key/certificate pairs, use the --tls-sni-cert-key multiple times. Examples: "example.crt,example.key" or "foo.crt,foo.key:*.foo.com,foo.com".', _SERVE),
    _flag("http2-max-streams-per-connection", "int", 0, "The limit that the server gives to clients for the maximum number of streams in an HTTP/2 connection.", _SERVE, _NO_HTTP2),
    _flag("permit-port-sharing", "bool", False, "If true, SO_REUSEPORT will be used when binding the port.", _SERVE),
    _flag("permit-address-sharing", "bool", False, "If true, SO_REUSEADDR will be used when binding the port.", _SERVE),
    # DelegatingAuthenticationOptions.
    _flag("authentication-kubeconfig", "string", "", "kubeconfig file pointing at the 'core' kubernetes server with enough rights to create tokenreviews.authentication.k8s.io.", _AUTHN),
    _flag("authentication-token-webhook-cache-ttl", "duration", 10.0, "The duration to cache responses from the webhook token authenticator.", _AUTHN),
    _flag("client-ca-file", "string", "", "If set, any request presenting a client certificate signed by one of the authorities in the client-ca-file is authenticated with an identity corresponding to the CommonName of the client certificate.", _AUTHN),
    _flag("requestheader-client-ca-file", "string", "", "Root certificate bundle to use to verify client certificates on incoming requests before trusting usernames in headers specified by --requestheader-username-headers.", _AUTHN),
    _flag("requestheader-username-headers", "stringSlice", ["x-remote-user"], "List of request headers to inspect for usernames.", _AUTHN),
    _flag("requestheader-group-headers", "stringSlice", ["x-remote-group"], "List of request headers to inspect for groups.", _AUTHN),
    _flag("requestheader-extra-headers-prefix", "stringSlice", ["x-remote-extra-"], "List of request header prefixes to inspect.", _AUTHN),
    _flag("requestheader-allowed-names", "stringSlice", [], "List of client certificate common names to allow to provide usernames in headers specified by --requestheader-username-headers. If empty, any client certificate validated by the authorities in --requestheader-client-ca-file is allowed.", _AUTHN),
    _flag("authentication-skip-lookup", "bool", False, "If false, the authentication-kubeconfig will be used to lookup missing authentication configuration from the cluster.", _AUTHN),
    _flag("authentication-tolerate-lookup-failure", "bool", False, "If true, failures to look up missing authentication configuration from the cluster are not considered fatal.", _AUTHN),
    _flag("authentication-config-refresh-interval", "duration", 60.0, "How often the extension-apiserver-authentication ConfigMap and the CA files are re-read (k8s.io/apiserver: every minute). Not in the Go adapter.", _AUTHN),
    # DelegatingAuthorizationOptions.
    _flag("authorization-kubeconfig", "string", "", "kubeconfig file pointing at the 'core' kubernetes server with enough rights to create subjectaccessreviews.authorization.k8s.io.", _AUTHZ),
    _flag("authorization-webhook-cache-authorized-ttl", "duration", 10.0, "The duration to cache 'authorized' responses from the webhook authorizer.", _AUTHZ),
    _flag("authorization-webhook-cache-unauthorized-ttl", "duration", 10.0, "The duration to cache 'unauthorized' responses from the webhook authorizer.", _AUTHZ),
    _flag("authorization-always-allow-paths", "stringSlice", ["/healthz", "/readyz", "/livez"], "A list of HTTP paths to skip during authorization, i.e. these are authorized without contacting the 'core' kubernetes server.", _AUTHZ),
    # AuditOptions.
    _flag("audit-policy-file", "string", "", "Path to the file that defines the audit policy configuration.", _AUDIT),
    _flag("audit-log-path", "string", "", "If set, all requests coming to the apiserver will be logged to this file.", _AUDIT),
    _flag("audit-log-maxage", "int", 0, "The maximum number of days to retain old audit log files.", _AUDIT),
    _flag("audit-log-maxbackup", "int", 0, "The maximum number of old audit log files to retain.", _AUDIT),
    _flag("audit-log-maxsize", "int", 0, "The maximum size in megabytes of the audit log file before it gets rotated.", _AUDIT),
    _flag("audit-log-format", "string", "json", 'Format of saved audits. "legacy" or "json".', _AUDIT),
    _flag("audit-log-compress", "bool", False, "If set, the rotated log files will be compressed using gzip.", _AUDIT),
    _flag("audit-log-mode", "string", "blocking", "Strategy for sending audit events: batch, blocking, blocking-strict.", _AUDIT),
    *_audit_backend_flags("log", 1, 0.0),
    _flag("audit-webhook-config-file", "string", "", "Path to a kubeconfig formatted file that defines the audit webhook configuration.", _AUDIT),
    _flag("audit-webhook-initial-backoff", "duration", 10.0, "The amount of time to wait before retrying the first failed request.", _AUDIT),
    _flag("audit-webhook-mode", "string", "batch", "Strategy for sending audit events: batch, blocking, blocking-strict.", _AUDIT),
    *_audit_backend_flags("webhook", 400, 30.0),
    # FeatureOptions.
    _flag("profiling", "bool", True, "Enable profiling via web interface host:port/debug/pprof/", _FEAT, _NO_PPROF),
    _flag("contention-profiling", "bool", False, "Enable block profiling, if profiling is enabled", _FEAT, _NO_PPROF),
    _flag("debug-socket-path", "string", "", "Use an unprotected (no authn/authz) unix-domain socket for profiling with the given path", _FEAT, _NO_PPROF),
    _flag("enable-priority-and-fairness", "bool", False, "If true, replace the max-in-flight handler with an enhanced one that queues and dispatches with priority and fairness", _FEAT, "priority and fairness (off by default in custom-metrics-apiserver) only decides which requests wait once the server is at its in-flight limit; this adapter does not queue requests by the cluster's FlowSchemas"),
    # component-base logs.
    _flag("v", "level", 0, "number for the log level verbosity", _LOG),
    _flag("vmodule", "string", "", "comma-separated list of pattern=N settings for file-filtered logging", _LOG, "its patterns name the Go adapter's source files, which do not exist here; use --v"),
    _flag("log-flush-frequency", "duration", 5.0, "Maximum number of seconds between log flushes", _LOG, "every log line is written to stderr at once, unbuffered, so there is nothing to flush"),
)  # fmt: skip

_KLOG = "Deprecated klog"

# klog's own flags, which the Go adapter accepted until v0.10 and dropped in v0.11 (KEP-2845):
# there they are unknown flags and crash-loop the pod. Manifests written for older versions
# still pass them (OpenShift's --logtostderr=true), so we accept them with klog's types, check
# the values and ignore them with a warning: our logs always go to stderr.
KLOG_LEGACY_FLAGS: tuple[FlagSpec, ...] = (
    _flag("logtostderr", "bool", True, "log to standard error instead of files", _KLOG),
    _flag("alsologtostderr", "bool", False, "log to standard error as well as files", _KLOG),
    _flag("log-dir", "string", "", "If non-empty, write log files in this directory", _KLOG),
    _flag("log-file", "string", "", "If non-empty, use this log file", _KLOG),
    _flag("log-file-max-size", "uint", 1800, "Defines the maximum size a log file can grow to. Unit is megabytes.", _KLOG),
    _flag("one-output", "bool", False, "If true, only write logs to their native severity level", _KLOG),
    _flag("skip-headers", "bool", False, "If true, avoid header prefixes in the log messages", _KLOG),
    _flag("skip-log-headers", "bool", False, "If true, avoid headers when opening log files", _KLOG),
    _flag("stderrthreshold", "severity", "2", "logs at or above this threshold go to stderr", _KLOG),
    _flag("add-dir-header", "bool", False, "If true, adds the file directory to the header of the log messages", _KLOG),
    _flag("log-backtrace-at", "traceLocation", ":0", "when logging hits line file:N, emit a stack trace", _KLOG),
)  # fmt: skip

# klog registers these names with underscores (--log_dir), and the Go adapter up to v0.10 took
# them so; the v0.11 release notes spell them with dashes. Both spellings are accepted.
_KLOG_LEGACY_SPELLINGS: tuple[FlagSpec, ...] = tuple(
    FlagSpec(spec.name.replace("-", "_"), spec.kind, spec.default, spec.help, spec.group)
    for spec in KLOG_LEGACY_FLAGS
    if "-" in spec.name
)
_KLOG_LEGACY_NAMES = frozenset(spec.name for spec in KLOG_LEGACY_FLAGS + _KLOG_LEGACY_SPELLINGS)

# Old names k8s.io/apiserver still registers and marks deprecated (pflag accepts them and
# prints a notice): alias -> (the flag it sets, pflag's deprecation message).
DEPRECATED_ALIASES: dict[str, tuple[str, str]] = {
    "audit-webhook-batch-initial-backoff": (
        "audit-webhook-initial-backoff",
        "Deprecated, use --audit-webhook-initial-backoff instead.",
    ),
}
_BY_NAME = {spec.name: spec for spec in FLAGS}
_ALIAS_SPECS = tuple(
    FlagSpec(alias, _BY_NAME[target].kind, _BY_NAME[target].default, message, "")
    for alias, (target, message) in DEPRECATED_ALIASES.items()
)
_COMMAND_LINE = FLAGS + KLOG_LEGACY_FLAGS + _KLOG_LEGACY_SPELLINGS + _ALIAS_SPECS

_METAVARS = {"stringSlice": "strings", "stringArray": "string", "level": "int"}


_USAGE = """\
{prog} [flags]                       serve the metrics APIs
       {prog} check-config [flags] CONFIG   explain a config (--help for its flags)
       {prog} explain-hpa [flags] [NAME]    why an HPA scales as it does, or shows <unknown>
       {prog} --version"""

_OVERVIEW = """\
Serves the custom.metrics.k8s.io, external.metrics.k8s.io and metrics.k8s.io APIs from
Prometheus, with the flags and config files of kubernetes-sigs/prometheus-adapter v0.12.0.

most used flags:
  --config FILE                   the rules: rules, externalRules, resourceRules
  --prometheus-url URL            where Prometheus (or Thanos, Mimir...) answers
  --metrics-relist-interval 10m   how often to list the series again
  --secure-port 443               the HTTPS port the aggregator connects to
  --tls-cert-file, --tls-private-key-file, or --cert-dir
                                  the serving certificate (self-signed in --cert-dir if none)
  --no-cluster                    run locally, without a cluster and without authentication
  --v 0                           log verbosity (5: debug; 6: each request and Prometheus query)

Every flag follows, by group. They are parsed as the Go adapter's spf13/pflag parses them
(--flag=value or --flag value; words that are not flags are ignored)."""


def build_parser(prog: str = "prometheus-adapter") -> argparse.ArgumentParser:
    """The flags as `--help` shows them, with their defaults; `parse_flags` parses."""
    parser = argparse.ArgumentParser(
        prog=prog,
        usage=_USAGE.format(prog=prog),
        description=_OVERVIEW,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    groups: dict[str, argparse._ArgumentGroup] = {}
    for spec in FLAGS + KLOG_LEGACY_FLAGS:
        group = groups.get(spec.group)
        if group is None:
            description = (
                "klog's flags, which the Go adapter dropped in v0.11: accepted (also with "
                "underscores, as klog names them) and ignored with a warning; logs always go "
                "to stderr."
                if spec.group == _KLOG
                else None
            )
            group = parser.add_argument_group(f"{spec.group} flags", description)
            groups[spec.group] = group
        note = f" [accepted; no effect here: {spec.no_effect}]" if spec.no_effect else ""
        help_text = f"{spec.help} (default {spec.default_text()}){note}".replace("%", "%%")
        # One-letter Go flags also have a shorthand (pflag.PFlagFromGoFlag): -v 4.
        options = [f"-{spec.name}", f"--{spec.name}"] if len(spec.name) == 1 else [f"--{spec.name}"]
        default = list(spec.default) if isinstance(spec.default, list) else spec.default
        group.add_argument(
            *options,
            dest=spec.dest,
            default=default,
            nargs="?" if spec.kind == "bool" else None,
            metavar=_METAVARS.get(spec.kind, spec.kind),
            help=help_text,
        )
    return parser


def prometheus_config(args: argparse.Namespace) -> PrometheusConfig:
    """The Prometheus connection the flags describe (the server's and check-config's)."""
    return PrometheusConfig(
        url=args.prometheus_url,
        verb=args.prometheus_verb,
        headers=parse_header_flags(args.prometheus_header),
        token_file=args.prometheus_token_file,
        ca_file=args.prometheus_ca_file,
        client_cert_file=args.prometheus_client_tls_cert_file,
        client_key_file=args.prometheus_client_tls_key_file,
        auth_config=args.prometheus_auth_config,
        auth_incluster=args.prometheus_auth_incluster,
        timeout=args.prometheus_timeout,
        max_get_url_length=args.prometheus_max_get_url_length,
        # check-config's live flags do not include this one: the default then.
        max_response_size=parse_size(
            getattr(args, "prometheus_max_response_size", str(DEFAULT_MAX_RESPONSE_SIZE))
        ),
    )


def validate_flags(args: argparse.Namespace) -> list[str]:
    """The Go adapter's startup checks on flag values; returns error messages."""
    errors = []
    if not args.config:
        errors.append(
            "no metrics discovery configuration file specified (make sure to use --config)"
        )
    if args.prometheus_verb not in ("GET", "POST"):
        errors.append(
            f'unsupported Prometheus HTTP verb "{args.prometheus_verb}"; '
            'supported verbs: "GET" and "POST"'
        )
    # Go only looks at the two when --prometheus-ca-file is not given.
    if (
        args.prometheus_auth_incluster
        and args.prometheus_auth_config
        and not args.prometheus_ca_file
    ):
        errors.append(
            "may not use both in-cluster auth and an explicit kubeconfig at the same time"
        )
    if not args.no_cluster and args.client_qps > 0 and args.client_burst < 1:
        errors.append("--client-burst must be at least 1 when --client-qps is set")
    for flag in ("prometheus-max-get-url-length", "prometheus-max-matcher-length"):
        if getattr(args, flag.replace("-", "_")) < 0:
            errors.append(f"--{flag} must not be negative")
    if args.metrics_relist_interval <= 0:
        errors.append("--metrics-relist-interval must be positive")
    if args.event_loop not in ("auto", "asyncio", "uvloop"):
        errors.append(
            f'--event-loop must be "auto", "asyncio" or "uvloop", not "{args.event_loop}"'
        )
    elif args.event_loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        errors.append("--event-loop=uvloop: the uvloop package is not installed")
    if args.discovery_mode not in DISCOVERY_MODES:
        errors.append(
            f"--discovery-mode must be one of {', '.join(DISCOVERY_MODES)}, "
            f'not "{args.discovery_mode}"'
        )
    for flag in ("request-header-timeout", "idle-connection-timeout"):
        if getattr(args, flag.replace("-", "_")) <= 0:
            errors.append(f"--{flag} must be positive")
    if args.max_connections < 0:
        errors.append("--max-connections must not be negative")
    if args.namespace_query_ttl < 0:
        errors.append("--namespace-query-ttl must not be negative")
    errors.extend(audit_flag_errors(audit_options(args)))
    return errors


def parse_flags(argv: Sequence[str]) -> argparse.Namespace:
    """The command line as the Go adapter's pflag parses it: every flag by its `dest`, plus
    `changed_flags` (the names given, pflag's Changed) and `flag_warnings` (lines to print).

    Raises adapter.flagparse.FlagError with pflag's message, or HelpRequested.
    """
    result = parse(argv, _COMMAND_LINE)
    args = argparse.Namespace(**{spec.dest: result.values[spec.name] for spec in FLAGS})
    args.changed_flags = result.changed
    args.flag_warnings = []
    if result.positional:
        # pflag leaves them to the program, and the Go adapter ignores them (the Helm
        # chart's args begin with /adapter, the Go image's own path).
        args.flag_warnings.append(f"ignoring positional arguments: {shlex.join(result.positional)}")
    legacy_given = result.changed & _KLOG_LEGACY_NAMES
    legacy = [f"--{spec.name}" for spec in _COMMAND_LINE if spec.name in legacy_given]
    if legacy:
        args.flag_warnings.append(
            f"ignoring klog flags {', '.join(legacy)}: deprecated, and removed from the Go "
            "adapter in v0.11; logs always go to stderr"
        )
    for alias, (target, message) in DEPRECATED_ALIASES.items():
        if alias in result.changed:
            # Both names share one variable in Go; the one given last wins there, the
            # current name here.
            if target not in result.changed:
                setattr(args, _BY_NAME[target].dest, result.values[alias])
            args.flag_warnings.append(f"Flag --{alias} has been deprecated, {message}")
    if args.metrics_max_age == 0:
        # As the Go adapter: a zero max age means "the relist interval".
        args.metrics_max_age = args.metrics_relist_interval
    return args
