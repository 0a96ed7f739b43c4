"""Real-world configs of the Go adapter, and one small data set that all their rules find.

The configs are fifteen files from public repositories that the Go adapter v0.12.0 starts with
(origins in their SOURCES.md). They are not ours to ship, so they stay outside the repository,
in ``../shared/realworld-configs/``; :func:`realworld_configs` is empty when that folder is
absent, and tests skip.

:func:`realworld_dataset` is what :mod:`harness.exporter` serves for them, deterministic and
small (two pods, two nodes). Its series have the label shapes those configs expect:
- cAdvisor container series with both label generations on one series (``container``/``pod``
  and ``container_name``/``pod_name``, as kubelets 1.14-1.15 exposed them) and the node they
  run on, plus each node's root cgroup (``id="/"``);
- node-exporter series as kube-prometheus labels them (``namespace``/``pod`` of the exporter
  pod, ``instance`` = the node, ``job="node-exporter"``), its
  ``node_namespace_pod:kube_pod_info:`` recording rule, and kubelet resource metrics;
- application series: HTTP and order counters, Istio, ingress-nginx, RabbitMQ with
  ``kubernetes_namespace``/``kubernetes_pod_name``, Kafka consumer lag, queue gauges, and
  recording-rule names with ``:``.
The exporter exposes a ``job`` or ``instance`` label itself where a config needs its value;
Prometheus must scrape with ``honor_labels`` (as :class:`harness.prometheus.PrometheusProcess`
does).
"""

from pathlib import Path

from harness.exporter import CounterSpec, Dataset, GaugeSpec, MiB, PodSpec

__all__ = [
    "NAMESPACE",
    "NODES",
    "POD_NAMES",
    "REALWORLD_CONFIG_DIR",
    "realworld_configs",
    "realworld_dataset",
]

REALWORLD_CONFIG_DIR = Path(__file__).resolve().parents[2] / "shared" / "realworld-configs"

NAMESPACE = "shop"  # the application pods
MONITORING = "monitoring"  # the node-exporter pods
POD_NAMES = ("web-0", "web-1")
NODES = ("node-a", "node-b")


def realworld_configs() -> list[Path]:
    """The config files, in name order; empty when the folder is absent."""
    if not REALWORLD_CONFIG_DIR.is_dir():
        return []
    return sorted(REALWORLD_CONFIG_DIR.glob("*.yaml"))


def _container_series(
    namespace: str, pod: str, container: str, node: str, index: int
) -> tuple[list[CounterSpec], list[GaugeSpec]]:
    labels = {
        "namespace": namespace,
        "pod": pod,
        "pod_name": pod,
        "container": container,
        "container_name": container,
        "node": node,
    }
    memory = float((64 + 32 * index) * MiB)
    network = {"namespace": namespace, "pod": pod, "pod_name": pod, "interface": "eth0"}
    counters = [
        CounterSpec("container_cpu_usage_seconds_total", labels, 0.125 * (index + 1)),
        CounterSpec("container_network_receive_bytes_total", {**network, "node": node}, 1000.0),
    ]
    gauges = [
        GaugeSpec("container_memory_working_set_bytes", labels, memory),
        GaugeSpec("container_memory_working_set_bytes:without_kmem", labels, memory / 2),
    ]
    return counters, gauges


def _app_series(pod: str, index: int) -> tuple[list[CounterSpec], list[GaugeSpec]]:
    labels = {"namespace": NAMESPACE, "pod": pod}
    counters = [
        CounterSpec(
            f"{service}_requests_total",
            {**labels, "service": f"{service}-service", "exported_endpoint": path, "method": verb},
            rate + index,
        )
        for service, path, verb, rate in (
            ("order", "/orders", "POST", 2.0),
            ("inventory", "/inventory/reduce", "PUT", 1.0),
            ("notification", "/notify", "POST", 0.5),
        )
    ]
    counters.append(
        CounterSpec("promhttp_metric_handler_requests_total", {**labels, "code": "200"}, 0.2)
    )
    gauges = [
        GaugeSpec("agent_studio_active_runs", labels, float(3 + index)),
        GaugeSpec("kube_pod_created", labels, 1_700_000_000.0 + index),
        GaugeSpec(
            "rabbitmq_queue_messages",
            {"kubernetes_namespace": NAMESPACE, "kubernetes_pod_name": pod, "queue": "task_queue"},
            float(10 * (index + 1)),
        ),
    ]
    return counters, gauges


def _node_series(node: str) -> tuple[list[CounterSpec], list[GaugeSpec]]:
    exporter_pod = f"node-exporter-{node}"
    exporter = {
        "namespace": MONITORING,
        "pod": exporter_pod,
        "instance": node,
        "node": node,
        "job": "node-exporter",
    }
    counters = [
        CounterSpec("node_cpu_seconds_total", {**exporter, "cpu": str(cpu), "mode": mode}, share)
        for cpu in range(2)
        for mode, share in (("idle", 0.75), ("user", 0.25))
    ]
    root_cgroup = {"id": "/", "node": node, "instance": node}
    counters += [
        CounterSpec("node_cpu_usage_seconds_total", {"node": node}, 0.5),  # kubelet
        CounterSpec("container_cpu_usage_seconds_total", root_cgroup, 1.5),
    ]
    gauges = [
        GaugeSpec("node_memory_MemTotal_bytes", exporter, float(8192 * MiB)),
        GaugeSpec("node_memory_MemAvailable_bytes", exporter, float(6144 * MiB)),
        GaugeSpec(
            "node_namespace_pod:kube_pod_info:",
            {"namespace": MONITORING, "pod": exporter_pod, "node": node},
            1.0,
        ),
        GaugeSpec("node_memory_working_set_bytes", {"node": node}, float(2048 * MiB)),
        GaugeSpec("container_memory_working_set_bytes", root_cgroup, float(2048 * MiB)),
    ]
    # The exporter pod's own container, so that every listed pod has metrics.
    own_counters, own_gauges = _container_series(MONITORING, exporter_pod, "node-exporter", node, 0)
    return counters + own_counters, gauges + own_gauges


def _cluster_series() -> tuple[list[CounterSpec], list[GaugeSpec]]:
    destination = {
        "reporter": "destination",
        "destination_service_name": "web",
        "destination_service_namespace": NAMESPACE,
        "response_code": "200",
    }
    buckets = "istio_request_duration_milliseconds_bucket"
    counters = [
        CounterSpec("istio_requests_total", destination, 3.0),
        *(
            CounterSpec(buckets, {**destination, "le": le}, rate)
            for le, rate in (("50", 1.0), ("100", 2.5), ("+Inf", 3.0))
        ),
        CounterSpec(
            "ingress_nginx_detail_requests_total",
            {"namespace": NAMESPACE, "ingress": "web", "status": "200"},
            4.0,
        ),
    ]
    gauges = [
        GaugeSpec("kube_deployment_created", {"namespace": NAMESPACE, "deployment": "web"}, 1.0),
        GaugeSpec("kube_namespace_created", {"namespace": NAMESPACE}, 1.0),
        GaugeSpec("kube_adapter_metric_queue_size", {"queue": "orders"}, 12.0),
        GaugeSpec("foobar", {"namespace": NAMESPACE}, 5.0),
        GaugeSpec("orders_queue_length", {"namespace": NAMESPACE}, 7.0),
        GaugeSpec("orders_queue", {"namespace": NAMESPACE}, 8.0),
        GaugeSpec(
            "kafka_consumergroup_lag",
            {
                "namespace": NAMESPACE,
                "consumergroup": "orders",
                "topic": "orders",
                "partition": "0",
            },
            42.0,
        ),
    ]
    return counters, gauges


def realworld_dataset() -> Dataset:
    """Pods web-0 and web-1 in namespace ``shop`` on nodes node-a and node-b (one each),
    node-exporter pods in ``monitoring``, and the application series; see the module doc."""
    counters: list[CounterSpec] = []
    gauges: list[GaugeSpec] = []
    parts = [_cluster_series()]
    for index, (pod, node) in enumerate(zip(POD_NAMES, NODES, strict=True)):
        parts += [_container_series(NAMESPACE, pod, "app", node, index), _app_series(pod, index)]
    parts += [_node_series(node) for node in NODES]
    for part_counters, part_gauges in parts:
        counters += part_counters
        gauges += part_gauges
    pods = tuple(
        PodSpec(NAMESPACE, pod, request_rate=1.0 + index, labels={"service": "web"})
        for index, pod in enumerate(POD_NAMES)
    )
    return Dataset(pods=pods, gauges=tuple(gauges), counters=tuple(counters))
