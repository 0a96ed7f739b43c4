"""Connection settings for Prometheus, and the `--prometheus-header` flag parser."""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

__all__ = [
    "DEFAULT_MAX_RESPONSE_SIZE",
    "DEFAULT_SERVER",
    "PrometheusConfig",
    "PrometheusConfigError",
    "canonical_header_key",
    "check_header",
    "format_size",
    "parse_header_flags",
    "parse_size",
]


# One answer's body may hold this much. No legitimate instant-query answer comes near: an
# HPA's queries are per object, split to a few hundred objects (--prometheus-max-matcher-length);
# the largest are per namespace (metrics.k8s.io's containers, --namespace-query-ttl's objects),
# ~150 bytes of JSON each, so 32 MiB is ~220,000 of them in one namespace, more than Kubernetes
# supports in a whole cluster (150,000 pods). Parsed as it arrives, an answer takes 2 (samples
# with a series' usual labels) to 5.5 (two-label samples) times its size at its peak, so the
# limit keeps a runaway answer (a query that lost its aggregation, a proxy page that never
# ends) under ~180 MB, within the 256Mi that docs/performance.md suggests for large fleets.
DEFAULT_MAX_RESPONSE_SIZE = 32 << 20

# The name of the command-line backend (--prometheus-url and its flags) wherever backends are
# named: our own metrics, logs, check-config, and `prometheusServer: default` in a config.
DEFAULT_SERVER = "default"

_SIZE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|k|M|G|T)?")
_SIZE_FACTORS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 1 << 10,
    "Mi": 1 << 20,
    "Gi": 1 << 30,
    "Ti": 1 << 40,
}


class PrometheusConfigError(ValueError):
    """Settings the Go adapter rejects at startup (bad URL, verb, CA, key pair, token file)."""


@dataclass(frozen=True, slots=True)
class PrometheusConfig:
    """How to reach Prometheus; one field per `--prometheus-*` flag.

    - `url`: base URL, may carry a path prefix (Thanos `/prom`, Mimir `/prometheus`,
      VictoriaMetrics `/select/0/prometheus`); endpoint paths are joined onto it like Go's
      `path.Join`. Its own query string and fragment are dropped (Go replaces them).
    - `verb`: "GET" (parameters in the URL) or "POST" (form body).
    - `headers`: extra headers, see `parse_header_flags`. An `Authorization` header here wins
      over `token_file`, as with client-go's bearer round tripper.
    - `token_file`: whole content, whitespace stripped, sent as `Authorization: Bearer ...`;
      re-read when the file changes (Go reads it once).
    - `ca_file`: PEM bundle of trusted CAs (TLS 1.2 minimum). Without it the system store is used.
    - `client_cert_file`/`client_key_file`: mTLS client pair. As in Go, used **only when
      `ca_file` is also set** and both are given; otherwise ignored with a warning.
    - `auth_config` / `auth_incluster`: TLS and credentials from a kubeconfig file or from
      the pod's service account (client-go's transport: CA, insecure-skip-tls-verify, token,
      token file, basic auth, client certificate, exec plugin). Both together are an error.
      As in Go, `ca_file` wins: with it, both are ignored; `token_file` wraps either (its
      token wins over the kubeconfig's).
    - `timeout`: seconds for one request (connect, send, read); also sent to Prometheus as
      the `timeout` parameter of `/api/v1/query`.
    - `max_connections`: connection pool size.
    - `max_get_url_length`: with `verb="GET"`, a request whose full encoded URL would be
      longer than this many bytes is sent as POST (form body) instead, because proxies and
      Prometheus-compatible servers reject long request lines (414, VictoriaMetrics' query
      length limit). 0 never switches (the Go adapter's behaviour). Not in the Go adapter.
    - `max_response_size`: bytes of one answer's body (after any decompression) past which
      the adapter stops reading, closes the connection and fails the request; 0: no limit.
      The streamed series listing of discovery is exempt: its memory does not grow with its
      size. Not in the Go adapter (which reads any answer whole).
    """

    url: str = "https://localhost"
    verb: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    token_file: str = ""
    ca_file: str = ""
    client_cert_file: str = ""
    client_key_file: str = ""
    auth_config: str = ""
    auth_incluster: bool = False
    timeout: float = 10.0
    max_connections: int = 100
    max_get_url_length: int = 8192
    max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE


# RFC 7230 token characters: what Go's textproto accepts in a header name.
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)


def canonical_header_key(key: str) -> str:
    """Go's `http.CanonicalHeaderKey`: "x-scope-orgid" -> "X-Scope-Orgid".

    Keys with characters outside the token set are returned unchanged, as in Go.
    """
    if not key or any(c not in _TOKEN_CHARS for c in key):
        return key
    out: list[str] = []
    upper = True
    for c in key:
        out.append(c.upper() if upper else c.lower())
        upper = c == "-"
    return "".join(out)


def check_header(key: str, value: str, *, what: str = "Prometheus header") -> None:
    """Reject a header Go's net/http would refuse to send. Messages never quote the value:
    headers often carry credentials."""
    bad = sorted({c for c in key if c not in _TOKEN_CHARS})
    if not key or bad:
        problem = f"contains {', '.join(repr(c) for c in bad)}" if bad else "is empty"
        raise PrometheusConfigError(f"invalid {what}: header name {key!r} {problem}")
    if any(c in value for c in "\r\n\0"):
        raise PrometheusConfigError(f"invalid {what} {key}: the value contains a line break or NUL")


def parse_header_flags(values: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """Parse repeated `--prometheus-header Key=Value` flags like the Go adapter.

    Split on the first "="; "Key" alone gives an empty value; repeated keys accumulate;
    keys are canonicalised. Go only fails at request time on a bad header; we fail here,
    with the flag named, for an empty or invalid key or a value with a line break.
    Values are stripped of surrounding whitespace, as Go does when writing headers.
    """
    headers: list[tuple[str, str]] = []
    for raw in values:
        key, _, value = raw.partition("=")
        if not key:
            # The value is not quoted: headers often carry credentials.
            raise PrometheusConfigError(
                "invalid --prometheus-header: empty header name (expected Key=Value)"
            )
        check_header(key, value, what="--prometheus-header")
        headers.append((canonical_header_key(key), value.strip(" \t")))
    return tuple(headers)


def parse_size(text: str, *, flag: str = "--prometheus-max-response-size") -> int:
    """A size in bytes written as a Kubernetes quantity: "67108864", "64Mi", "1.5Gi", "500M".
    Fractions of a byte are dropped."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise PrometheusConfigError(
            f'invalid {flag} "{text}": expected bytes, optionally with a suffix '
            "(Ki, Mi, Gi, Ti or k, M, G, T), such as 64Mi"
        )
    number, suffix = match.groups()
    try:
        return int(Decimal(number) * _SIZE_FACTORS[suffix or ""])
    except InvalidOperation:  # pragma: no cover - the pattern only admits numbers
        raise PrometheusConfigError(f'invalid {flag} "{text}"') from None


def format_size(size: int) -> str:
    """A size as `parse_size` reads it, in the largest unit that divides it: "64Mi"."""
    for suffix in ("Ti", "Gi", "Mi", "Ki", "T", "G", "M", "k"):
        factor = _SIZE_FACTORS[suffix]
        if size and size % factor == 0:
            return f"{size // factor}{suffix}"
    return str(size)
