"""Run the adapter: wire flags to the Prometheus client, discovery, providers and the HTTPS
listener, then serve until SIGTERM or SIGINT.

Shutdown is graceful: readiness fails first (so load balancers stop sending), the listener
closes, in-flight requests finish (up to a timeout), and background tasks stop.
"""

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence

from aiohttp import web

from adapter.discovery.relister import Relister
from adapter.kube.rest_mapper import BUILTIN_RESOURCES, StaticRESTMapper
from adapter.naming.rules import CompiledConfig
from adapter.prometheus.client import PrometheusClient, PrometheusConfig, parse_header_flags
from adapter.providers.custom import CustomMetricsProvider
from adapter.providers.external import ExternalMetricsProvider
from adapter.providers.objects import PrometheusObjectLister
from adapter.server.app import ServerState, build_app
from adapter.server.metrics import AdapterMetrics
from adapter.server.tls import ServingCertConfig, ServingTLS, TLSConfigError

__all__ = ["serve"]

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT = 30.0


def _prometheus_config(args: argparse.Namespace) -> PrometheusConfig:
    return PrometheusConfig(
        url=args.prometheus_url,
        verb=args.prometheus_verb,
        headers=parse_header_flags(args.prometheus_header),
        token_file=args.prometheus_token_file,
        ca_file=args.prometheus_ca_file,
        client_cert_file=args.prometheus_client_tls_cert_file,
        client_key_file=args.prometheus_client_tls_key_file,
        timeout=args.prometheus_timeout,
    )


def _bind_address(args: argparse.Namespace, argv: Sequence[str]) -> str:
    explicit = any(a == "--bind-address" or a.startswith("--bind-address=") for a in argv)
    if args.no_cluster and not explicit:
        return "127.0.0.1"
    return str(args.bind_address)


async def _serve(args: argparse.Namespace, argv: Sequence[str], compiled: CompiledConfig) -> int:
    metrics = AdapterMetrics(args.prometheus_url)
    tls = ServingTLS(
        ServingCertConfig(
            cert_dir=args.cert_dir,
            tls_cert_file=args.tls_cert_file,
            tls_private_key_file=args.tls_private_key_file,
            extra_sans=tuple(args.self_signed_cert_sans),
            min_version=args.tls_min_version,
            cipher_suites=tuple(args.tls_cipher_suites),
        )
    )
    prometheus = PrometheusClient(
        _prometheus_config(args), observer=metrics.observe_prometheus_request
    )
    relister = Relister(
        prometheus,
        compiled.rules,
        compiled.external_rules,
        interval=args.metrics_relist_interval,
        max_age=args.metrics_max_age,
        observer=metrics.observe_relist,
    )
    mapper = StaticRESTMapper(BUILTIN_RESOURCES)
    objects = PrometheusObjectLister(prometheus, args.metrics_max_age)
    state = ServerState(
        metrics=metrics,
        custom=(
            CustomMetricsProvider(lambda: relister.registry, prometheus, objects, mapper)
            if compiled.rules
            else None
        ),
        external=(
            ExternalMetricsProvider(lambda: relister.registry, prometheus)
            if compiled.external_rules
            else None
        ),
        discovery_ready=relister.ready.is_set,
    )
    runner = web.AppRunner(build_app(state), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    host = _bind_address(args, argv)
    site = web.TCPSite(
        runner,
        host,
        args.secure_port,
        ssl_context=tls.context,
        reuse_address=args.permit_address_sharing or None,
        reuse_port=args.permit_port_sharing or None,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(relister.run()), asyncio.create_task(tls.watch())]
    try:
        await site.start()
        log.info(
            "serving %s on https://%s:%d (%s)",
            ", ".join(g for g, p in (("custom", state.custom), ("external", state.external)) if p)
            or "no metrics APIs",
            host,
            args.secure_port,
            tls.certificate_info().get("subject", ""),
        )
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
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await runner.cleanup()
        await prometheus.close()
    return 0


def serve(args: argparse.Namespace, argv: Sequence[str], compiled: CompiledConfig) -> int:
    if not args.no_cluster:
        log.error(
            "running against a Kubernetes cluster (authentication, authorization, object "
            "lookup) is not implemented in this version yet; use --no-cluster for local use"
        )
        return 1
    log.warning(
        "--no-cluster: authentication and authorization are OFF; anyone who can reach the "
        "port can read every metric. Objects come from Prometheus series, not from Kubernetes."
    )
    try:
        return asyncio.run(_serve(args, argv, compiled))
    except TLSConfigError as exc:
        log.error("%s", exc)
        return 1
    except OSError as exc:
        log.error("cannot serve on port %s: %s", args.secure_port, exc)
        return 1
