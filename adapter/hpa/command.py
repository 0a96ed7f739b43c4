"""`prometheus-adapter explain-hpa [-n NAMESPACE] [NAME] [-A]`.

Reads the HPAs (autoscaling/v2), their scale targets and pods from kube-apiserver, runs each
metric's request through these rules against Prometheus and through the aggregator, and
explains the controller's arithmetic. Exit codes: 0; 1 when a named HPA has a metric that
cannot be computed (or the config is invalid); 2 when Prometheus or kube-apiserver cannot
be reached.
"""

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from yarl import URL

from adapter.check.live import (
    LiveOptions,
    PrometheusUnreachableError,
    backend_clients,
    discover,
)
from adapter.check.report import add_live_flags
from adapter.config.errors import ConfigError
from adapter.hpa.cluster import custom_metrics_version, list_hpas
from adapter.hpa.explain import Context, explain_hpa
from adapter.hpa.render import render_text
from adapter.hpa.spec import SpecError, parse_hpa
from adapter.kube.api import KubeAPIError
from adapter.kube.client import KubeClient
from adapter.kube.config import KubeConfigError, load_config
from adapter.kube.discovery_mapper import DiscoveryRESTMapper
from adapter.naming.rules import CompiledConfig, load_rules
from adapter.options import prometheus_config
from adapter.prometheus.client import PrometheusClient
from adapter.prometheus.config import PrometheusConfigError
from adapter.prometheus.transport import display_url

__all__ = ["explain_hpa_main"]

DISCOVERY_WAIT = 10.0


class _Unreachable(Exception):
    pass


def _default_kubeconfig() -> str:
    env = os.environ.get("KUBECONFIG", "")
    if env:
        return env.split(os.pathsep)[0]
    home = Path.home() / ".kube" / "config"
    return str(home) if home.exists() else ""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prometheus-adapter explain-hpa",
        description=(
            "Explain HorizontalPodAutoscalers end to end: the request the HPA controller sends "
            "for each metric, the answer of these rules (PromQL, Prometheus' answer, values) and "
            "through kube-apiserver, the controller's arithmetic, the replica count, and what "
            "to fix when a metric fails. Exits 1 when a metric of a named HPA cannot be "
            "computed, 2 when Prometheus or kube-apiserver cannot be reached."
        ),
        allow_abbrev=False,
    )
    parser.add_argument("name", nargs="?", default="", metavar="NAME", help="the HPA's name")
    parser.add_argument(
        "-n", "--namespace", default="", help="the HPAs' namespace (default: default)"
    )
    parser.add_argument(
        "-A", "--all-namespaces", action="store_true", help="the HPAs of every namespace"
    )
    parser.add_argument("-o", "--output", choices=("text", "json"), default="text")
    parser.add_argument(
        "--config", required=True, help="the adapter's config file (the server's --config)"
    )
    parser.add_argument(
        "--kubeconfig",
        default=None,
        help="kubeconfig of the cluster (default: $KUBECONFIG, ~/.kube/config, else in-cluster)",
    )
    add_live_flags(parser, optional_url=False)
    return parser


async def _run(args: argparse.Namespace, compiled: CompiledConfig) -> dict[str, Any]:
    prometheus = prometheus_config(args)
    url = display_url(URL(prometheus.url))
    kubeconfig = args.kubeconfig if args.kubeconfig is not None else _default_kubeconfig()
    max_age = args.metrics_max_age or args.metrics_relist_interval
    options = LiveOptions(max_age=max_age)
    kube = load_config(kubeconfig)
    api = KubeClient(kube)
    try:
        async with (
            PrometheusClient(prometheus) as client,
            backend_clients(compiled, prometheus) as servers,
        ):
            found = await discover(compiled, client, url, options, servers=servers)
            namespace = None if args.all_namespaces else (args.namespace or "default")
            try:
                raw = await list_hpas(api, namespace, args.name or None)
            except KubeAPIError as exc:
                if exc.status == 0:
                    raise _Unreachable(f"cannot reach kube-apiserver: {exc.message}") from None
                raise _Unreachable(f"cannot read the HPAs: {exc}") from None
            mapper = DiscoveryRESTMapper(api)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(mapper.refresh(), DISCOVERY_WAIT)
            ctx = Context(
                compiled,
                found,
                client,
                api,
                mapper,
                options,
                await custom_metrics_version(api),
                "the kubeconfig's user",
                servers={name: named for name, (named, _) in servers.items()},
            )
            hpas = []
            for obj in raw:
                try:
                    hpa = parse_hpa(obj)
                except SpecError as exc:
                    meta = obj.get("metadata") or {}
                    hpas.append(
                        {
                            "namespace": meta.get("namespace"),
                            "name": meta.get("name"),
                            "error": str(exc),
                            "ok": False,
                        }
                    )
                    continue
                hpas.append(await explain_hpa(ctx, hpa))
    finally:
        await api.close()
    return {
        "prometheus": url,
        "kubeApiserver": kube.server,
        "customMetricsVersion": ctx.custom_version,
        "warnings": [w.format(compiled.file) for w in compiled.warnings],
        "hpas": hpas,
    }


def explain_hpa_main(
    argv: Sequence[str], stdout: TextIO = sys.stdout, stderr: TextIO = sys.stderr
) -> int:
    args = _parser().parse_args(list(argv))
    try:
        compiled = load_rules(args.config)
    except ConfigError as exc:
        stderr.write(f"error: {exc.describe()}\n")
        return 1
    try:
        report = asyncio.run(_run(args, compiled))
    except ConfigError as exc:  # a prometheusServers entry whose files cannot be read
        stderr.write(f"error: {exc.describe()}\n")
        return 1
    except (
        PrometheusConfigError,
        PrometheusUnreachableError,
        KubeConfigError,
        _Unreachable,
    ) as exc:
        stderr.write(f"error: {exc}\n")
        return 2
    if args.output == "json":
        json.dump(report, stdout, indent=2)
        stdout.write("\n")
    else:
        stdout.write(render_text(report))
    if args.name and not all(h.get("ok") for h in report["hpas"]):
        return 1
    return 0
