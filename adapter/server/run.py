"""Run the adapter: wire flags to the Prometheus client, discovery, providers and the HTTPS
listener, then serve until SIGTERM or SIGINT.

Two backends decide where objects and identities come from:
- cluster mode (the default): a REST mapper from live API discovery, watch-based object caches,
  and delegated authentication and authorization against kube-apiserver;
- `--no-cluster`: objects from Prometheus series, a built-in resource table, no authentication.

Shutdown is graceful: readiness fails first (so load balancers stop sending), the listener
closes after `--shutdown-delay-duration`, in-flight requests finish, background tasks stop.
"""

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware
from yarl import URL

from adapter.audit import AuditConfigError, Auditor, audit_chain, audit_decisions, build_auditor
from adapter.auth.authenticators import (
    ClientCertAuthenticator,
    RequestHeaderAuthenticator,
    new_delegating_authenticator,
)
from adapter.auth.authorizers import (
    AlwaysAllowGroups,
    AlwaysAllowPaths,
    SubjectAccessReviewAuthorizer,
    UnionAuthorizer,
)
from adapter.auth.delegation import (
    AuthenticationConfig,
    AuthenticationConfigLoader,
    AuthenticationFlags,
    AuthenticationLookupError,
)
from adapter.auth.impersonation import impersonation_middleware
from adapter.auth.middleware import authentication_middleware, authorization_middleware
from adapter.auth.token_review import TokenReviewAuthenticator
from adapter.config.errors import ConfigError
from adapter.discovery.relister import Relister
from adapter.kube.client import KubeClient
from adapter.kube.config import KubeConfigError, load_config
from adapter.kube.discovery_mapper import DiscoveryRESTMapper
from adapter.kube.object_cache import KubernetesObjectLister
from adapter.kube.rest_mapper import BUILTIN_RESOURCES, RESTMapper, StaticRESTMapper
from adapter.naming.rules import CompiledConfig, ResourceMetricRules, load_rules
from adapter.options import prometheus_config
from adapter.prometheus.client import PrometheusClient, PrometheusConfigError
from adapter.prometheus.config import DEFAULT_SERVER
from adapter.prometheus.transport import display_url
from adapter.providers.custom import CustomMetricsProvider
from adapter.providers.external import ExternalMetricsProvider
from adapter.providers.objects import ObjectLister, PrometheusObjectLister
from adapter.providers.querier import SingleFlightQuerier
from adapter.providers.resource import (
    ClusterResourceObjects,
    PrometheusResourceObjects,
    ResourceMetricsProvider,
    ResourceObjects,
)
from adapter.server.app import ServerState, build_app
from adapter.server.backends import RoutedSeries, ServerBackends
from adapter.server.connections import ConnectionLimits, SecureSite
from adapter.server.local_access import announce_local_access
from adapter.server.loop_lag import watch_loop_lag
from adapter.server.metrics import AdapterMetrics
from adapter.server.reload import ConfigReloader, ConfigReloadMetrics
from adapter.server.resource_api import RESOURCE_GROUP
from adapter.server.responses import CUSTOM_GROUP, EXTERNAL_GROUP
from adapter.server.tls import ServingCertConfig, ServingTLS, TLSConfigError
from adapter.tasks import cancel_and_wait

__all__ = ["serve"]

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT = 30.0
# How long start-up waits for API discovery before going on with the built-in table
# (the Go adapter blocks until every group has answered, minutes on big clusters).
DISCOVERY_STARTUP_WAIT = 10.0
# Delegated authentication and authorization clients, as k8s.io/apiserver configures them.
DELEGATED_QPS, DELEGATED_BURST = 200.0, 400


@dataclass
class Backend:
    """Where objects, resource names and identities come from."""

    mapper: RESTMapper
    objects: ObjectLister
    compiled: CompiledConfig
    # Loads the config file again, validated as at start-up (for reloads).
    load: Callable[[], CompiledConfig]
    # Running pods and nodes for metrics.k8s.io, given the resource rules.
    resource_objects: Callable[[ResourceMetricRules], ResourceObjects]
    middlewares: list[Middleware] = field(default_factory=list)
    background: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


def _bind_address(args: argparse.Namespace) -> str:
    if args.no_cluster and "bind-address" not in args.changed_flags:
        return "127.0.0.1"
    return str(args.bind_address)


def _no_cluster_backend(
    args: argparse.Namespace,
    compiled: CompiledConfig,
    prometheus: PrometheusClient,
    auditor: Auditor | None = None,
    servers: ServerBackends | None = None,
) -> Backend:
    # Objects come from the series of the backend each rule (or resourceRules) names.
    named = servers.clients if servers is not None else None
    resource_series = RoutedSeries(servers) if servers is not None else prometheus
    return Backend(
        mapper=StaticRESTMapper(BUILTIN_RESOURCES),
        objects=PrometheusObjectLister(prometheus, args.metrics_max_age, servers=named),
        compiled=compiled,
        load=lambda: load_rules(args.config),
        resource_objects=lambda rules: PrometheusResourceObjects.from_rules(
            rules, resource_series, lookback=args.metrics_max_age
        ),
        # No authentication here: requests are audited as the anonymous user.
        middlewares=audit_chain(auditor),
    )


def _kube_client(path: str, qps: float, burst: int) -> KubeClient:
    return KubeClient(load_config(path), qps=qps, burst=burst)


async def _cluster_backend(
    args: argparse.Namespace, tls: ServingTLS, auditor: Auditor | None = None
) -> Backend:
    lister = _kube_client(args.lister_kubeconfig, args.client_qps, args.client_burst)
    authn = _kube_client(args.authentication_kubeconfig, DELEGATED_QPS, DELEGATED_BURST)
    authz = _kube_client(args.authorization_kubeconfig, DELEGATED_QPS, DELEGATED_BURST)
    closers: list[Callable[[], Awaitable[None]]] = [lister.close, authn.close, authz.close]
    try:
        mapper = DiscoveryRESTMapper(lister, refresh_interval=args.discovery_interval)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(mapper.refresh(), DISCOVERY_STARTUP_WAIT)
        if not mapper.synced.is_set():
            log.warning("API discovery has not answered yet; using the built-in resource table")

        def load() -> CompiledConfig:
            # Overrides are checked against the cluster's resources, as the Go adapter does.
            return load_rules(
                args.config, mapper=mapper, require_known_resources=mapper.synced.is_set()
            )

        compiled = load()
        objects = KubernetesObjectLister(lister, mapper)
        closers.append(objects.close)

        def trust_client_cas(config: AuthenticationConfig) -> None:
            for pem in config.ca_pems:
                tls.add_client_ca_data(pem.decode())

        loader = AuthenticationConfigLoader(
            AuthenticationFlags(
                client_ca_file=args.client_ca_file,
                requestheader_client_ca_file=args.requestheader_client_ca_file,
                requestheader_username_headers=tuple(args.requestheader_username_headers),
                requestheader_group_headers=tuple(args.requestheader_group_headers),
                requestheader_extra_headers_prefix=tuple(args.requestheader_extra_headers_prefix),
                requestheader_allowed_names=tuple(args.requestheader_allowed_names),
                skip_lookup=args.authentication_skip_lookup,
                tolerate_lookup_failure=args.authentication_tolerate_lookup_failure,
            ),
            authn,
            on_change=trust_client_cas,
        )
        await loader.load_once()
        authenticator = new_delegating_authenticator(
            request_header=RequestHeaderAuthenticator(lambda: loader.current.request_header),
            client_cert=ClientCertAuthenticator(lambda: loader.current.client_ca),
            token=TokenReviewAuthenticator(authn, ttl=args.authentication_token_webhook_cache_ttl),
        )
        authorizer = UnionAuthorizer(
            AlwaysAllowGroups(),
            AlwaysAllowPaths(args.authorization_always_allow_paths),
            SubjectAccessReviewAuthorizer(
                authz,
                allowed_ttl=args.authorization_webhook_cache_authorized_ttl,
                denied_ttl=args.authorization_webhook_cache_unauthorized_ttl,
            ),
        )

        def cluster_resource_objects(rules: ResourceMetricRules) -> ResourceObjects:
            resource_objects = ClusterResourceObjects.for_cluster(lister)
            resource_objects.start()
            closers.append(resource_objects.close)
            return resource_objects

        return Backend(
            mapper=mapper,
            objects=objects,
            compiled=compiled,
            load=load,
            resource_objects=cluster_resource_objects,
            # Go's order: audit init, authentication, audit, impersonation, authorization (with
            # audit off, only authentication, impersonation and authorization).
            middlewares=audit_chain(
                auditor,
                authentication_middleware(
                    authenticator, request_header_config=lambda: loader.current.request_header
                ),
                authorization_middleware(audit_decisions(auditor, authorizer)),
                impersonation=impersonation_middleware(authorizer),
            ),
            background=[
                mapper.run,
                lambda: loader.run(args.authentication_config_refresh_interval),
            ],
            closers=closers,
        )
    except BaseException:
        for close in closers:
            await close()
        raise


def _server_label(prometheus_url: str) -> str:
    """The `server` label of our own metrics: the URL without its credentials."""
    try:
        return display_url(URL(prometheus_url))
    except ValueError:  # reported by the client's own validation, just after
        return ""


async def _serve(args: argparse.Namespace, compiled: CompiledConfig) -> int:
    metrics = AdapterMetrics(_server_label(args.prometheus_url))
    # First, as Go validates its options before anything else; None when audit is off.
    auditor = build_auditor(args, metrics.registry, verbosity=args.v)
    tls = ServingTLS(
        ServingCertConfig(
            cert_dir=args.cert_dir,
            tls_cert_file=args.tls_cert_file,
            tls_private_key_file=args.tls_private_key_file,
            extra_sans=tuple(args.self_signed_cert_sans),
            min_version=args.tls_min_version,
            cipher_suites=tuple(args.tls_cipher_suites),
            sni_cert_keys=tuple(args.tls_sni_cert_key),
            bind_address=_bind_address(args),
        )
    )
    base_config = prometheus_config(args)
    prometheus = PrometheusClient(
        base_config,
        observer=metrics.backend_observer(DEFAULT_SERVER, _server_label(args.prometheus_url)),
    )
    # The config's named backends (`prometheusServers`, not in the Go adapter).
    servers = ServerBackends(base_config, prometheus, metrics, metrics.shared_queries.inc)
    try:
        if args.no_cluster:
            backend = _no_cluster_backend(args, compiled, prometheus, auditor, servers)
        else:
            backend = await _cluster_backend(args, tls, auditor)
        try:
            servers.apply(await servers.prepare(backend.compiled))
        except BaseException:
            for close in backend.closers:
                await close()
            raise
    except BaseException:
        await prometheus.close()
        raise
    compiled = backend.compiled
    relister = Relister(
        prometheus,
        compiled.rules,
        compiled.external_rules,
        interval=args.metrics_relist_interval,
        max_age=args.metrics_max_age,
        observer=metrics.observe_relist,
        mode=args.discovery_mode,
        listers=servers.clients,
    )

    def groups_of(config: CompiledConfig) -> frozenset[str]:
        groups = {
            CUSTOM_GROUP: bool(config.rules),
            EXTERNAL_GROUP: bool(config.external_rules),
            RESOURCE_GROUP: config.resource_rules is not None,
        }
        return frozenset(group for group, served in groups.items() if served)

    # The API groups the config in use serves: computed when a config is loaded, read on
    # every request.
    served = [groups_of(compiled)]

    def served_groups() -> frozenset[str]:
        return served[0]

    querier = SingleFlightQuerier(prometheus, metrics.shared_queries.inc)
    # Providers exist for every API so that a reload can start serving one; which are served
    # follows the config in use. metrics.k8s.io needs resourceRules at start-up.
    resource = None
    if compiled.resource_rules is not None:
        resource = ResourceMetricsProvider(
            compiled.resource_rules,
            prometheus,
            backend.resource_objects(compiled.resource_rules),
            servers=servers.clients,
        )
    state = ServerState(
        metrics=metrics,
        custom=CustomMetricsProvider(
            lambda: relister.registry,
            querier,
            backend.objects,
            backend.mapper,
            max_matcher_length=args.prometheus_max_matcher_length,
            namespace_query_ttl=args.namespace_query_ttl,
            servers=servers.queriers,
        ),
        external=ExternalMetricsProvider(
            lambda: relister.registry, querier, servers=servers.queriers
        ),
        resource=resource,
        served_groups=served_groups,
        discovery_ready=relister.ready.is_set,
        extra_middlewares=backend.middlewares,
    )

    async def apply(new: CompiledConfig) -> None:
        # A backend whose client cannot be made refuses the config (ConfigError) here,
        # before anything changes.
        prepared = await servers.prepare(new)
        servers.apply(prepared)
        served[0] = groups_of(new)
        relister.update_rules(new.rules, new.external_rules, servers.clients)
        if resource is not None and new.resource_rules is not None:
            resource.rules = new.resource_rules
        elif new.resource_rules is not None:
            log.warning("resourceRules were added: metrics.k8s.io is served after a restart")
        await relister.relist_once()

    reloader = ConfigReloader(
        args.config, backend.load, apply, ConfigReloadMetrics(metrics.registry), served=compiled
    )
    runner = web.AppRunner(build_app(state), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    host = _bind_address(args)
    site = SecureSite(
        runner,
        host,
        args.secure_port,
        ssl_context=tls.context,
        limits=ConnectionLimits(
            request_header_timeout=args.request_header_timeout,
            idle_connection_timeout=args.idle_connection_timeout,
            max_connections=args.max_connections,
        ),
        reuse_address=args.permit_address_sharing or None,
        reuse_port=args.permit_port_sharing or None,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reloader.request_reload)
    jobs = [
        relister.run,
        tls.watch,
        reloader.watch,
        lambda: watch_loop_lag(metrics.event_loop_lag.observe),
        *backend.background,
    ]
    tasks = [asyncio.create_task(job()) for job in jobs]
    try:
        if auditor is not None:
            auditor.start()
        await site.start()
        log.info(
            "serving %s on https://%s:%d (%s)",
            ", ".join(sorted(served_groups())) or "no metrics APIs",
            host,
            args.secure_port,
            tls.certificate_info().get("subject", ""),
        )
        if args.no_cluster and not args.tls_cert_file:
            announce_local_access(args.cert_dir, host, args.secure_port)
        await stop.wait()
        state.shutting_down = True
        if args.shutdown_delay_duration > 0:
            log.info(
                "shutting down: readiness fails now, serving for %gs more",
                args.shutdown_delay_duration,
            )
            await asyncio.sleep(args.shutdown_delay_duration)
        log.info("shutting down: closing the listener, finishing in-flight requests")
    finally:
        await cancel_and_wait(tasks)
        await runner.cleanup()
        if auditor is not None:  # after the last request: flush what is buffered
            await auditor.close()
        await prometheus.close()
        await servers.close()
        for close in backend.closers:
            await close()
    return 0


def _loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop for "uvloop", and for "auto" when it is installed; else asyncio's."""
    if choice == "asyncio":
        return None
    try:
        import uvloop  # noqa: PLC0415 - optional, imported only when chosen
    except ImportError:
        if choice == "uvloop":  # validate_flags has checked; only a broken install gets here
            raise
        return None
    log.info("using the uvloop event loop")
    return uvloop.new_event_loop


def serve(args: argparse.Namespace, compiled: CompiledConfig) -> int:
    if args.no_cluster:
        log.warning(
            "--no-cluster: authentication and authorization are OFF; anyone who can reach the "
            "port can read every metric. Objects come from Prometheus series, not from Kubernetes."
        )
    try:
        with asyncio.Runner(loop_factory=_loop_factory(args.event_loop)) as runner:
            return runner.run(_serve(args, compiled))
    except (TLSConfigError, KubeConfigError, AuthenticationLookupError, AuditConfigError) as exc:
        log.error("%s", exc)
        return 1
    except PrometheusConfigError as exc:
        log.error("unable to construct Prometheus client: %s", exc)  # Go's words
        return 1
    except ConfigError as exc:
        log.error("%s", exc.describe())
        return 1
    except OSError as exc:
        log.error("cannot serve on port %s: %s", args.secure_port, exc)
        return 1
