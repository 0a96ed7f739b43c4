"""Benchmark harness: HPA-fleet layouts, and the stack the serving and fleet benchmarks use.

A :class:`FleetLayout` describes a cluster of N HorizontalPodAutoscalers with distinct targets,
spread over namespaces (``hpas_per_namespace`` each), in the mix of every 20 HPAs: 12 Pods
metrics over an app's 2 or 3 pods (``pods/*?labelSelector=app=<app>``), 5 Object metrics on a
Service (whose 2 backend pods carry ``service=<svc>`` on ``http_requests_total``) and 3 External
metrics on a queue gauge (``queue_depth{name=<queue>}``). It gives the exporter's data set (one
series per pod), the objects of the fake kube-apiserver, and each HPA's request path. The
layout of the first N HPAs is the same whatever the largest N, so a fleet can grow in steps.

:func:`running_stack` runs what a benchmark needs around the adapter, each in its own process
so that none of them shares the load generator's event loop: the exporter and the fake
kube-apiserver (``python -m harness.fleet exporter|apiserver SPEC``; the exporter on uvloop
when it is installed), a real Prometheus, a front-proxy CA and its client certificate for the
aggregator's identity. The fake kube-apiserver process tallies its request log by kind (and
forgets the entries, so a long run does not grow it) and serves the tallies on a plain-HTTP
``/stats``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import pickle
import signal
import ssl
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiohttp
import orjson
from aiohttp import web

from harness.adapter import AdapterProcess
from harness.exporter import Dataset, GaugeSpec, PodSpec, running_exporter
from harness.pki import CertificateAuthority
from harness.processes import dying_with_parent
from harness.prometheus import PrometheusProcess

__all__ = [
    "CUSTOM",
    "EXTERNAL",
    "HPA_GROUPS",
    "HPA_USER",
    "METRIC",
    "FleetHPA",
    "FleetLayout",
    "HelperProcess",
    "KubeObject",
    "Stack",
    "adapter_supports",
    "main",
    "running_stack",
]

CUSTOM = "/apis/custom.metrics.k8s.io/v1beta2"
EXTERNAL = "/apis/external.metrics.k8s.io/v1beta1"
METRIC = "http_requests_per_second"
QUEUE_METRIC = "queue_depth"
HPA_USER = "system:serviceaccount:kube-system:horizontal-pod-autoscaler"
HPA_GROUPS = (
    "system:serviceaccounts",
    "system:serviceaccounts:kube-system",
    "system:authenticated",
)
METRIC_GROUPS = ("custom.metrics.k8s.io", "external.metrics.k8s.io")
FRONT_PROXY_CLIENT = "front-proxy-client"

# (resource key as the fake kube-apiserver names it, e.g. "v1/pods"; the object)
KubeObject = tuple[str, dict[str, Any]]
HPAKind = Literal["pods", "object", "external"]

# The kinds of each 20 consecutive HPAs of a namespace: 12 Pods, 5 Object, 3 External,
# interleaved so that any prefix has about that mix.
_PATTERN = "POPEPPOPPEPOPPOPEPPO"
_KINDS: dict[str, HPAKind] = {"P": "pods", "O": "object", "E": "external"}
assert (_PATTERN.count("P"), _PATTERN.count("O"), _PATTERN.count("E")) == (12, 5, 3)


@dataclass(frozen=True)
class FleetHPA:
    """One HPA: its metric kind, namespace, target (app, service or queue) and request path."""

    index: int
    kind: HPAKind
    namespace: str
    target: str
    path: str


@dataclass(frozen=True)
class FleetLayout:
    """The first ``hpas`` HPAs of the fleet, ``hpas_per_namespace`` in each namespace."""

    hpas: int
    hpas_per_namespace: int = 50

    def __post_init__(self) -> None:
        if self.hpas < 1 or self.hpas_per_namespace < 1:
            raise ValueError("need hpas >= 1 and hpas_per_namespace >= 1")

    @staticmethod
    def namespace_of(index: int, per_namespace: int) -> str:
        return f"fleet-{index // per_namespace}"

    def hpa(self, index: int) -> FleetHPA:
        namespace = self.namespace_of(index, self.hpas_per_namespace)
        local = index % self.hpas_per_namespace
        kind = _KINDS[_PATTERN[local % len(_PATTERN)]]
        if kind == "pods":
            target = f"app-{local}"
            path = f"{CUSTOM}/namespaces/{namespace}/pods/*/{METRIC}?labelSelector=app%3D{target}"
        elif kind == "object":
            target = f"svc-{local}"
            path = f"{CUSTOM}/namespaces/{namespace}/services/{target}/{METRIC}"
        else:
            # External metrics here are not namespaced (config/demo.yaml): the queue name is
            # unique over the cluster.
            target = f"{namespace}-queue-{local}"
            path = f"{EXTERNAL}/namespaces/{namespace}/{QUEUE_METRIC}?labelSelector=name%3D{target}"
        return FleetHPA(index, kind, namespace, target, path)

    def hpa_list(self) -> list[FleetHPA]:
        return [self.hpa(index) for index in range(self.hpas)]

    def namespaces(self) -> list[str]:
        count = -(-self.hpas // self.hpas_per_namespace)
        return [f"fleet-{n}" for n in range(count)]

    def pods(self) -> list[tuple[str, str, dict[str, str]]]:
        """(namespace, pod name, labels): an app's 2 or 3 pods for each Pods HPA (label
        ``app``), and 2 backend pods for each Service (labels ``app`` and ``service``)."""
        pods: list[tuple[str, str, dict[str, str]]] = []
        for hpa in self.hpa_list():
            if hpa.kind == "pods":
                replicas = 2 + hpa.index % 2
                labels = {"app": hpa.target}
            elif hpa.kind == "object":
                replicas = 2
                labels = {"app": hpa.target, "service": hpa.target}
            else:
                continue
            for replica in range(replicas):
                pods.append((hpa.namespace, f"{hpa.target}-{replica}", dict(labels)))
        return pods

    def queues(self) -> list[str]:
        return [hpa.target for hpa in self.hpa_list() if hpa.kind == "external"]

    def services(self) -> list[tuple[str, str]]:
        return [(hpa.namespace, hpa.target) for hpa in self.hpa_list() if hpa.kind == "object"]

    def dataset(self) -> Dataset:
        """One ``http_requests_total`` series per pod (with its labels), one gauge per queue."""
        pods = tuple(
            PodSpec(namespace, name, request_rate=0.25 * (n % 10 + 1), labels=labels)
            for n, (namespace, name, labels) in enumerate(self.pods())
        )
        gauges = tuple(
            GaugeSpec(QUEUE_METRIC, {"name": queue}, float(n % 100))
            for n, queue in enumerate(self.queues())
        )
        return Dataset(pods=pods, gauges=gauges)

    def kube_objects(self) -> list[KubeObject]:
        """Namespaces, Running pods with their labels, and Services selecting their pods."""
        objects: list[KubeObject] = [
            ("v1/namespaces", {"metadata": {"name": namespace}, "spec": {}})
            for namespace in self.namespaces()
        ]
        for namespace, name, labels in self.pods():
            meta = {"name": name, "namespace": namespace, "labels": {"app": labels["app"]}}
            objects.append(("v1/pods", {"metadata": meta, "status": {"phase": "Running"}}))
        for namespace, name in self.services():
            meta = {"name": name, "namespace": namespace}
            objects.append(("v1/services", {"metadata": meta, "spec": {"selector": {"app": name}}}))
        return objects


# --- helper processes ---------------------------------------------------------------------


class HelperProcess:
    """``python -m harness.fleet <role> <spec>``: started, waited for (it prints one JSON line
    when it serves), stopped with SIGTERM. ``info`` is that JSON line."""

    def __init__(self, role: str, spec: Path, workdir: Path) -> None:
        self.role = role
        self.spec = spec
        self.workdir = workdir
        self.log_path = workdir / f"{role}.log"
        self.process: asyncio.subprocess.Process | None = None
        self.info: dict[str, Any] = {}

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.role} is not running"
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def start(self, timeout: float = 120) -> dict[str, Any]:
        repo = str(Path(__file__).resolve().parents[1])
        path = [repo, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
        argv = [sys.executable, "-m", "harness.fleet", self.role, str(self.spec)]
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                *dying_with_parent(argv),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                cwd=self.workdir,
                env=env,
            )
        assert self.process.stdout is not None
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        except TimeoutError:
            await self.stop()
            raise TimeoutError(f"{self.role} not ready after {timeout:g}s:\n{self.log()}") from None
        if not line:
            await self.stop()
            raise RuntimeError(f"{self.role} exited while starting:\n{self.log()}")
        self.info = json.loads(line)
        return self.info

    async def stop(self, timeout: float = 10) -> None:
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()


# --- the stack ----------------------------------------------------------------------------


@dataclass
class Stack:
    """Exporter, Prometheus and fake kube-apiserver processes, and the aggregator's identity."""

    workdir: Path
    exporter: HelperProcess
    kube: HelperProcess
    prometheus: PrometheusProcess
    kubeconfig: Path
    front_proxy_cert: Path
    front_proxy_key: Path
    series: int
    _session: aiohttp.ClientSession | None = field(default=None, repr=False)

    def cluster_flags(self) -> list[str]:
        return [
            f"--lister-kubeconfig={self.kubeconfig}",
            f"--authentication-kubeconfig={self.kubeconfig}",
            f"--authorization-kubeconfig={self.kubeconfig}",
        ]

    def adapter(
        self,
        config: Path,
        extra_args: Sequence[str] = (),
        *,
        no_cluster: bool = False,
        relist_interval: str = "1m",
    ) -> AdapterProcess:
        """The adapter as its own process (not started); cluster mode against the fake
        kube-apiserver unless ``no_cluster``. ``--v=2`` overrides the harness's ``--v=6``,
        which logs every request."""
        flags = [] if no_cluster else self.cluster_flags()
        return AdapterProcess(
            config,
            self.prometheus.url,
            [*flags, "--v=2", *extra_args],
            relist_interval=relist_interval,
            no_cluster=no_cluster,
        )

    def client_ssl(self, adapter: AdapterProcess, *, front_proxy: bool = True) -> ssl.SSLContext:
        """Trusts the adapter's serving certificate; presents the front-proxy client cert."""
        context = adapter.ssl_context()
        if front_proxy:
            context.load_cert_chain(self.front_proxy_cert, self.front_proxy_key)
        return context

    async def kube_stats(self) -> dict[str, int]:
        """The fake kube-apiserver's request tallies: sar, token_review, list, watch, get,
        other, total."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with self._session.get(self.kube.info["stats_url"]) as response:
            stats: dict[str, int] = await response.json()
            return stats

    async def prometheus_queries(self) -> int:
        """How many instant queries Prometheus has answered (its own HTTP metrics)."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        total = 0
        async with self._session.get(self.prometheus.url + "/metrics") as response:
            text = await response.text()
        for line in text.splitlines():
            if line.startswith("prometheus_http_requests_total{") and (
                'handler="/api/v1/query"' in line
            ):
                total += int(float(line.rsplit(" ", 1)[1]))
        return total

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


@contextlib.asynccontextmanager
async def running_stack(
    dataset: Dataset,
    kube_objects: Sequence[KubeObject],
    workdir: Path,
    *,
    scrape_interval: str = "10s",
    wait_timeout: float = 180,
    log: Callable[[str], None] = print,
) -> AsyncIterator[Stack]:
    """Start the exporter (``dataset``), Prometheus scraping it, and the fake kube-apiserver
    holding ``kube_objects`` with the front-proxy authentication ConfigMap and rules allowing
    the HPA controller's user the metrics API groups (and the adapter's ``/metrics``); wait
    until Prometheus has every pod's ``irate`` and every gauge; stop everything on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    front_proxy = CertificateAuthority("front-proxy-ca")
    cert, key = front_proxy.issue_client(FRONT_PROXY_CLIENT).write(workdir, "front-proxy")
    dataset_file = workdir / "dataset.pickle"
    dataset_file.write_bytes(pickle.dumps(dataset, protocol=pickle.HIGHEST_PROTOCOL))
    kube_spec = workdir / "kube.json"
    kube_spec.write_bytes(
        orjson.dumps(
            {
                "workdir": str(workdir / "kube"),
                "objects": list(kube_objects),
                "requestheader_ca": front_proxy.cert_pem.decode(),
                "allowed_names": [FRONT_PROXY_CLIENT],
                "allow": [
                    {"user": HPA_USER, "group_name": list(METRIC_GROUPS)},
                    # The benchmarks read the adapter's /metrics with the same identity.
                    {"user": HPA_USER, "non_resource_path": "/metrics", "verb": "get"},
                ],
            }
        )
    )
    exporter = HelperProcess("exporter", dataset_file, workdir)
    kube = HelperProcess("apiserver", kube_spec, workdir)
    prometheus: PrometheusProcess | None = None
    stack: Stack | None = None
    try:
        started = time.monotonic()
        await asyncio.gather(exporter.start(), kube.start())
        log(f"exporter and fake kube-apiserver ready in {time.monotonic() - started:.1f}s")
        prometheus = PrometheusProcess(
            [exporter.info["target"]],
            scrape_interval=scrape_interval,
            workdir=workdir / "prometheus",
        )
        await prometheus.start()
        pods = len(dataset.pods)
        gauges = len(dataset.gauges)
        started = time.monotonic()
        if pods:
            await prometheus.wait_for_query(
                "count(irate(http_requests_total[1m]))",
                lambda r: bool(r) and float(r[0]["value"][1]) >= pods,
                timeout=wait_timeout,
            )
        if gauges:
            names = sorted({g.name for g in dataset.gauges})
            await prometheus.wait_for_query(
                f'count({{__name__=~"{"|".join(names)}"}})',
                lambda r: bool(r) and float(r[0]["value"][1]) >= gauges,
                timeout=wait_timeout,
            )
        log(f"Prometheus has rates for {pods} pods and {gauges} gauges after "
            f"{time.monotonic() - started:.1f}s")  # fmt: skip
        stack = Stack(
            workdir=workdir,
            exporter=exporter,
            kube=kube,
            prometheus=prometheus,
            kubeconfig=Path(kube.info["kubeconfig"]),
            front_proxy_cert=cert,
            front_proxy_key=key,
            series=len(dataset.series()),
        )
        yield stack
    finally:
        if stack is not None:
            await stack.close()
        if prometheus is not None:
            await prometheus.stop()
        await asyncio.gather(exporter.stop(), kube.stop())


_help_cache: dict[str, str] = {}


async def adapter_supports(flag: str) -> bool:
    """Whether ``python -m adapter --help`` lists ``flag`` (e.g. ``--namespace-query-ttl``)."""
    if sys.executable not in _help_cache:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "adapter",
            "--help",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[1],
        )
        output, _ = await process.communicate()
        _help_cache[sys.executable] = output.decode(errors="replace")
    text = _help_cache[sys.executable]
    return any(
        word == flag or word.startswith(flag + "=") or word == "[" + flag
        for word in text.replace("[", " [").split()
    )


# --- the helper processes' side ---------------------------------------------------------


def _run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """asyncio.run, with uvloop's loop when it is installed (it is optional)."""
    try:
        uvloop: Any = importlib.import_module("uvloop")
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())


async def _until_terminated(ready: dict[str, Any], tick: Callable[[], Awaitable[None]]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()
    while not stop.is_set():
        await tick()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


async def _serve_exporter(spec: Path) -> None:
    dataset: Dataset = pickle.loads(spec.read_bytes())

    async def nothing() -> None:
        return None

    async with running_exporter(dataset) as exporter:
        await _until_terminated({"target": exporter.target, "pid": os.getpid()}, nothing)


def _classify(method: str, path: str, query: dict[str, str]) -> str:
    if method == "POST" and path.startswith("/apis/authorization.k8s.io/"):
        return "sar"
    if method == "POST" and path.startswith("/apis/authentication.k8s.io/"):
        return "token_review"
    if method == "GET" and query.get("watch", "").lower() in ("1", "true"):
        return "watch"
    if method == "GET":
        parts = path.strip("/").split("/")
        # /api/v1/pods, /api/v1/namespaces/ns/pods, /apis/g/v/r ... (no name): a LIST
        core = parts[0] == "api"
        rest = parts[2:] if core else parts[3:]
        if rest and rest[0] == "namespaces" and len(rest) >= 3:
            rest = rest[2:]
        return "list" if len(rest) == 1 else "get"
    return "other"


async def _serve_apiserver(spec_path: Path) -> None:
    from harness.fake_kube_apiserver import FakeKubeAPIServer  # noqa: PLC0415 (child only)

    spec = orjson.loads(spec_path.read_bytes())
    kube_dir = Path(spec["workdir"])
    kube = FakeKubeAPIServer(workdir=kube_dir)
    for resource, obj in spec["objects"]:
        kube.add_object(resource, obj)
    kube.set_authentication_configmap(
        requestheader_ca=spec["requestheader_ca"], allowed_names=spec["allowed_names"]
    )
    for rule in spec["allow"]:
        kube.allow(**rule)
    del spec
    tallies: dict[str, int] = dict.fromkeys(
        ("sar", "token_review", "list", "watch", "get", "other", "total"), 0
    )

    def tally() -> None:
        for record in kube.requests:
            tallies[_classify(record.method, record.path, record.query)] += 1
            tallies["total"] += 1
        kube.requests.clear()

    async def stats(request: web.Request) -> web.Response:
        tally()
        return web.json_response(tallies)

    async def tick() -> None:
        tally()

    app = web.Application()
    app.router.add_get("/stats", stats)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    await kube.start()
    try:
        kubeconfig = kube.kubeconfig(kube_dir / "kubeconfig")
        ready = {
            "kubeconfig": str(kubeconfig),
            "url": kube.url,
            "stats_url": f"http://127.0.0.1:{port}/stats",
            "pid": os.getpid(),
        }
        await _until_terminated(ready, tick)
    finally:
        await kube.stop()
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.fleet",
        description="Serve a pickled exporter Dataset, or a fake kube-apiserver from a JSON "
        "spec, until SIGTERM; print one JSON line once serving.",
    )
    parser.add_argument("role", choices=("exporter", "apiserver"))
    parser.add_argument("spec", type=Path)
    args = parser.parse_args(argv)
    if args.role == "exporter":
        _run(lambda: _serve_exporter(args.spec))
    else:
        # Not on uvloop: FakeKubeAPIServer.start() reads its port from an asyncio Server.
        asyncio.run(_serve_apiserver(args.spec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
