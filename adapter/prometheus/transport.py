"""Connection plumbing for the Prometheus client: endpoint URLs, TLS, kubeconfig credentials
and the proxy from the environment. Everything here runs at startup."""

import base64
import ipaddress
import logging
import posixpath
import ssl
import urllib.request
from pathlib import Path

from yarl import URL

from adapter.kube.config import KubeConfigError, load_in_cluster, load_kubeconfig
from adapter.kube.credentials import ClientCredentials
from adapter.prometheus.config import PrometheusConfig, PrometheusConfigError

__all__ = [
    "basic_auth",
    "build_ssl_context",
    "display_url",
    "endpoint_url",
    "env_proxy",
    "join_url_path",
    "kubeconfig_credentials",
]

_log = logging.getLogger(__name__)


def join_url_path(base_path: str, endpoint: str) -> str:
    """Go's `path.Join(base, endpoint)`: join, then clean "//", "." and ".."."""
    joined = posixpath.normpath("/".join(p for p in (base_path, endpoint) if p))
    # POSIX keeps a leading "//"; Go's path.Clean does not.
    return "/" + joined.lstrip("/") if joined.startswith("//") else joined


def endpoint_url(base: URL, endpoint: str) -> URL:
    """The URL of one API endpoint: the base URL's path joined with the endpoint, without
    credentials, query string or fragment (Go overwrites the base URL's query string)."""
    return (
        base.with_user(None)
        .with_query(None)
        .with_fragment(None)
        .with_path(join_url_path(base.path, endpoint))
    )


def display_url(url: URL) -> str:
    """A URL safe for logs and error messages: no user, password or query string."""
    if not url.absolute:  # yarl refuses to edit the user of a relative URL
        return str(url.with_query(None).with_fragment(None))
    return str(url.with_user(None).with_query(None).with_fragment(None))


def _no_password() -> bytes:
    # Without a callback OpenSSL would prompt on the terminal for an encrypted key.
    raise PrometheusConfigError("the client key is encrypted; a passphrase is not supported")


def kubeconfig_credentials(config: PrometheusConfig) -> ClientCredentials | None:
    """The Go adapter's `makeKubeconfigHTTPClient`: the TLS and credentials of
    `--prometheus-auth-config` or `--prometheus-auth-incluster`, unless `--prometheus-ca-file`
    takes precedence (Go then never looks at either)."""
    if config.ca_file:
        if config.auth_config or config.auth_incluster:
            _log.warning(
                "ignoring --prometheus-auth-config/--prometheus-auth-incluster: "
                "--prometheus-ca-file takes precedence, as in the Go adapter"
            )
        return None
    if config.auth_incluster and config.auth_config:
        raise PrometheusConfigError(
            "may not use both in-cluster auth and an explicit kubeconfig at the same time"
        )
    try:
        if config.auth_config:
            return ClientCredentials(load_kubeconfig(config.auth_config))
        if config.auth_incluster:
            return ClientCredentials(load_in_cluster())
    except KubeConfigError as err:
        what = (
            f"auth configuration from {config.auth_config!r}"
            if config.auth_config
            else "in-cluster auth configuration"
        )
        raise PrometheusConfigError(
            f"unable to construct {what} for connecting to Prometheus: {err}"
        ) from None
    return None


def build_ssl_context(
    config: PrometheusConfig, scheme: str, credentials: ClientCredentials | None = None
) -> ssl.SSLContext | None:
    """The TLS context for Prometheus, following the Go adapter's `makePromClient`.

    With `ca_file`: trust only that bundle, TLS 1.2 minimum, plus the client pair when both
    files are set. Else with kubeconfig `credentials`: theirs. Without either: the system
    trust store (Go's default client), and the client pair is ignored, as in Go. Returns
    None for plain http without a CA file.
    """
    cert, key = config.client_cert_file, config.client_key_file
    if not config.ca_file:
        if cert or key:
            _log.warning(
                "ignoring --prometheus-client-tls-cert-file/--prometheus-client-tls-key-file: "
                "like the Go adapter, a client certificate is only used with --prometheus-ca-file"
            )
        if scheme != "https":
            return None
        if credentials is not None:
            return credentials.ssl_context
        ctx = ssl.create_default_context()
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx
    try:
        pem = Path(config.ca_file).read_bytes()
    except OSError as err:
        raise PrometheusConfigError(f"failed to read prometheus-ca-file: {err}") from None
    try:
        # Non-ASCII bytes can only sit in comments between PEM blocks; cadata must be ASCII.
        ctx = ssl.create_default_context(cadata=pem.decode("ascii", errors="ignore"))
    except (ssl.SSLError, ValueError) as err:
        raise PrometheusConfigError(
            f"no certs found in prometheus-ca-file {config.ca_file!r}: {err}"
        ) from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert and key:
        try:
            ctx.load_cert_chain(cert, key, password=_no_password)
        except (OSError, ssl.SSLError, PrometheusConfigError) as err:
            raise PrometheusConfigError(f"failed to read TLS key pair: {err}") from None
    elif cert or key:
        _log.warning(
            "ignoring the Prometheus client certificate: both --prometheus-client-tls-cert-file "
            "and --prometheus-client-tls-key-file are needed"
        )
    return ctx


def env_proxy(url: URL) -> tuple[URL | None, str | None]:
    """Go's `http.ProxyFromEnvironment` for `url`, read once (Go caches it too).

    HTTP_PROXY/HTTPS_PROXY by scheme, NO_PROXY, and never for localhost or loopback IPs.
    Returns the proxy URL without credentials and its `Proxy-Authorization` value.
    Reading it ourselves keeps aiohttp's `trust_env` off, which would also pull in ~/.netrc
    and cost a thread hop per request.
    """
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(url.scheme or "")
    host = (url.host or "").lower()
    if not proxy or _no_proxy(host, proxies.get("no", "")):
        return None, None
    proxy_url = URL(proxy if "://" in proxy else f"http://{proxy}")
    auth = None
    if proxy_url.user is not None:
        auth = basic_auth(proxy_url.user, proxy_url.password or "")
        proxy_url = proxy_url.with_user(None)
    return proxy_url, auth


def basic_auth(user: str, password: str) -> str:
    """The Authorization value Go's SetBasicAuth sends: base64 of the UTF-8 `user:password`.
    Unlike aiohttp's encoder, a `:` in the user is sent as it is, not refused."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _no_proxy(host: str, no_proxy: str) -> bool:
    """Go's golang.org/x/net/http/httpproxy `useProxy`, negated (ports are not compared)."""
    if host == "localhost":
        return True
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None and ip.is_loopback:
        return True
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        if "/" in entry:  # CIDR
            try:
                if ip is not None and ip in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        if entry.startswith("[") and "]" in entry:  # [v6]:port
            entry = entry[1 : entry.index("]")]
        elif entry.count(":") == 1:  # host:port
            entry = entry.partition(":")[0]
        if entry.startswith("*."):
            entry = entry[1:]
        if entry.startswith("."):  # ".y.com" matches subdomains only
            if host.endswith(entry):
                return True
        elif host == entry or host.endswith("." + entry):
            return True
    return False
