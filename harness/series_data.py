"""Synthetic series shaped like a real Kubernetes cluster's, for discovery benchmarks.

A cluster of deployments spread over namespaces and nodes, as a kube-prometheus style
Prometheus would hold it:

* cAdvisor (kubelet ``/metrics/cadvisor``) series for every container, for the pod's own
  cgroup (``container=""``, with the network metrics) and for the pause container
  (``container="POD"``), labelled ``container, id, image, name, namespace, pod`` plus the
  scrape's ``endpoint, instance, job, metrics_path, node, service``; counters ending in
  ``_seconds_total`` and ``_total``, and gauges;
* application series (``http_*``, ``process_*``, ``go_*``) of the pods behind a service,
  labelled ``namespace, pod, service, container, ...``;
* kube-state-metrics series about every pod (``kube_pod_*``);
* node-level series without a namespace (node-exporter, the root and system cgroups).

The series count comes from pods x containers x label values; there are about a hundred
distinct metric names, as in a real cluster. :func:`cluster_series` yields exactly
``matched`` series that the Helm chart's default rules' series queries select (a few per
cent more series are selected by none: pause containers and node-level series), so a
benchmark knows how many series discovery must see. :func:`write_openmetrics` writes them as
``promtool tsdb create-blocks-from openmetrics`` input, streaming: a million series is about
a gigabyte of text, never held in memory at once.

Everything is deterministic: the same ``matched`` always gives the same series. Bump
:data:`FORMAT_VERSION` when the output changes, so that caches of generated data are renewed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FORMAT_VERSION", "SeriesCounts", "cluster_series", "write_openmetrics"]

FORMAT_VERSION = 1

PODS_PER_NODE = 30
_WRITE_CHUNK = 1 << 20  # characters buffered before a write

_APPS = (
    "api", "web", "worker", "cache", "auth", "billing", "search", "ingest", "frontend",
    "scheduler", "notifier", "gateway", "reporting", "checkout", "catalog", "inventory",
)  # fmt: skip

# cAdvisor metrics of one cgroup: (name, ((label, value), ...) per series).
_One = ((),)
_FS_DEVICES = ("/dev/nvme0n1p1", "/dev/nvme0n1")
_CPU = (
    ("container_cpu_usage_seconds_total", ((("cpu", "total"),),)),
    ("container_cpu_user_seconds_total", _One),
    ("container_cpu_system_seconds_total", _One),
    ("container_cpu_cfs_periods_total", _One),
    ("container_cpu_cfs_throttled_periods_total", _One),
    ("container_cpu_cfs_throttled_seconds_total", _One),
    ("container_cpu_load_average_10s", _One),
)
_MEMORY = (
    ("container_memory_usage_bytes", _One),
    ("container_memory_working_set_bytes", _One),
    ("container_memory_rss", _One),
    ("container_memory_cache", _One),
    ("container_memory_swap", _One),
    ("container_memory_mapped_file", _One),
    ("container_memory_max_usage_bytes", _One),
    ("container_memory_failcnt", _One),
    (
        "container_memory_failures_total",
        tuple(
            (("failure_type", kind), ("scope", scope))
            for kind in ("pgfault", "pgmajfault")
            for scope in ("container", "hierarchy")
        ),
    ),
)
_BY_DEVICE = tuple((("device", device),) for device in _FS_DEVICES)
_ROOT_FS = ((("device", _FS_DEVICES[0]),),)
_FS = (
    ("container_fs_reads_bytes_total", _BY_DEVICE),
    ("container_fs_writes_bytes_total", _BY_DEVICE),
    ("container_fs_reads_total", _BY_DEVICE),
    ("container_fs_writes_total", _BY_DEVICE),
    ("container_fs_usage_bytes", _ROOT_FS),
    ("container_fs_limit_bytes", _ROOT_FS),
    ("container_fs_inodes_free", _ROOT_FS),
    ("container_fs_inodes_total", _ROOT_FS),
    ("container_fs_io_time_seconds_total", _ROOT_FS),
    ("container_fs_io_time_weighted_seconds_total", _ROOT_FS),
    ("container_fs_read_seconds_total", _ROOT_FS),
    ("container_fs_write_seconds_total", _ROOT_FS),
    ("container_fs_io_current", _ROOT_FS),
    ("container_fs_reads_merged_total", _ROOT_FS),
    ("container_fs_writes_merged_total", _ROOT_FS),
    ("container_fs_sector_reads_total", _ROOT_FS),
    ("container_fs_sector_writes_total", _ROOT_FS),
)
_SPEC_AND_TASKS = (
    ("container_spec_cpu_period", _One),
    ("container_spec_cpu_quota", _One),
    ("container_spec_cpu_shares", _One),
    ("container_spec_memory_limit_bytes", _One),
    ("container_spec_memory_reservation_limit_bytes", _One),
    ("container_spec_memory_swap_limit_bytes", _One),
    ("container_start_time_seconds", _One),
    ("container_last_seen", _One),
    ("container_processes", _One),
    ("container_threads", _One),
    ("container_threads_max", _One),
    ("container_sockets", _One),
    ("container_file_descriptors", _One),
    ("container_ulimits_soft", ((("ulimit", "max_open_files"),),)),
    (
        "container_tasks_state",
        tuple(
            (("state", state),)
            for state in ("iowaiting", "running", "sleeping", "stopped", "uninterruptible")
        ),
    ),
    ("container_oom_events_total", _One),
)
_NETWORK = tuple(
    (f"container_network_{direction}_{what}_total", ((("interface", "eth0"),),))
    for direction in ("receive", "transmit")
    for what in ("bytes", "packets", "errors", "packets_dropped")
)
_CONTAINER_CGROUP = _CPU + _MEMORY + _FS + _SPEC_AND_TASKS
_POD_CGROUP = _CPU + _MEMORY + _SPEC_AND_TASKS + _NETWORK
_PAUSE_CGROUP = (
    ("container_cpu_usage_seconds_total", ((("cpu", "total"),),)),
    ("container_memory_usage_bytes", _One),
    ("container_memory_working_set_bytes", _One),
    ("container_spec_cpu_shares", _One),
    ("container_start_time_seconds", _One),
    ("container_last_seen", _One),
)
_SYSTEM_CGROUPS = ("/", "/kubepods.slice", "/system.slice/kubelet.service")

_LE = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf")
_APP = (
    (
        "http_requests_total",
        tuple(
            (("code", code), ("method", method))
            for method in ("GET", "POST")
            for code in ("200", "404", "500")
        ),
    ),
    ("http_request_duration_seconds_bucket", tuple((("le", le),) for le in _LE)),
    ("http_request_duration_seconds_sum", _One),
    ("http_request_duration_seconds_count", _One),
    ("process_cpu_seconds_total", _One),
    ("process_resident_memory_bytes", _One),
    ("process_virtual_memory_bytes", _One),
    ("process_open_fds", _One),
    ("process_max_fds", _One),
    ("process_start_time_seconds", _One),
    ("go_goroutines", _One),
    ("go_threads", _One),
    ("go_memstats_alloc_bytes", _One),
    ("go_memstats_heap_inuse_bytes", _One),
    (
        "go_gc_duration_seconds",
        tuple((("quantile", q),) for q in ("0", "0.25", "0.5", "0.75", "1")),
    ),
    ("go_gc_duration_seconds_sum", _One),
    ("go_gc_duration_seconds_count", _One),
)
_KSM_POD = (
    (
        "kube_pod_status_phase",
        tuple((("phase", p),) for p in ("Failed", "Pending", "Running", "Succeeded", "Unknown")),
    ),
    ("kube_pod_status_ready", tuple((("condition", c),) for c in ("false", "true", "unknown"))),
    ("kube_pod_created", _One),
    ("kube_pod_start_time", _One),
)
_KSM_CONTAINER = (
    ("kube_pod_container_status_restarts_total", _One),
    ("kube_pod_container_status_running", _One),
    (
        "kube_pod_container_resource_requests",
        ((("resource", "cpu"), ("unit", "core")), (("resource", "memory"), ("unit", "byte"))),
    ),
    (
        "kube_pod_container_resource_limits",
        ((("resource", "cpu"), ("unit", "core")), (("resource", "memory"), ("unit", "byte"))),
    ),
)
_NODE = (
    (
        "node_cpu_seconds_total",
        tuple(
            (("cpu", str(cpu)), ("mode", mode))
            for cpu in range(4)
            for mode in ("idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user")
        ),
    ),
    ("node_memory_MemTotal_bytes", _One),
    ("node_memory_MemAvailable_bytes", _One),
    ("node_memory_MemFree_bytes", _One),
    ("node_memory_Cached_bytes", _One),
    ("node_memory_Buffers_bytes", _One),
    ("node_load1", _One),
    ("node_load5", _One),
    ("node_load15", _One),
    (
        "node_filesystem_avail_bytes",
        tuple((("device", d), ("fstype", "ext4"), ("mountpoint", "/")) for d in _FS_DEVICES[:1]),
    ),
    (
        "node_filesystem_size_bytes",
        tuple((("device", d), ("fstype", "ext4"), ("mountpoint", "/")) for d in _FS_DEVICES[:1]),
    ),
    (
        "node_network_receive_bytes_total",
        tuple((("device", d),) for d in ("eth0", "cni0")),
    ),
    (
        "node_network_transmit_bytes_total",
        tuple((("device", d),) for d in ("eth0", "cni0")),
    ),
    ("kubelet_running_pods", _One),
    ("kubelet_running_containers", ((("container_state", "running"),),)),
    ("up", _One),
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: Sequence[tuple[str, str]]) -> str:
    return ",".join(f'{name}="{_escape(value)}"' for name, value in pairs)


def _expand(
    metrics: Sequence[tuple[str, Sequence[Sequence[tuple[str, str]]]]], common: str
) -> Iterator[str]:
    """``name{common,extra}`` for each metric and each of its extra label sets."""
    for name, variants in metrics:
        for extra in variants:
            inner = f"{common},{_labels(extra)}" if extra else common
            yield f"{name}{{{inner}}}"


def _hex(seed: int, digits: int) -> str:
    """Deterministic pseudo-random hex digits (splitmix64), like ids and hashes in names."""
    out = ""
    while len(out) < digits:
        seed = (seed + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        z = seed
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        out += f"{z ^ (z >> 31):016x}"
    return out[:digits]


def _namespaces(matched: int) -> list[str]:
    count = max(3, round(math.sqrt(max(matched, 1) / 1000)))
    return ["kube-system", "monitoring"] + [f"team-{i:02d}" for i in range(count - 2)]


def _node(index: int) -> tuple[str, str]:
    """(node name, scrape instance host) of node ``index``."""
    ip = f"10.0.{index // 250}.{index % 250 + 4}"
    return f"ip-{ip.replace('.', '-')}.ec2.internal", ip


def _node_series(index: int) -> Iterator[str]:
    name, ip = _node(index)
    exporter = _labels(
        (
            ("endpoint", "metrics"),
            ("instance", f"{ip}:9100"),
            ("job", "node-exporter"),
            ("node", name),
            ("service", "node-exporter"),
        )
    )
    yield from _expand(_NODE, exporter)
    for cgroup in _SYSTEM_CGROUPS:
        common = _labels(
            (
                ("endpoint", "https-metrics"),
                ("id", cgroup),
                ("instance", f"{ip}:10250"),
                ("job", "kubelet"),
                ("metrics_path", "/metrics/cadvisor"),
                ("node", name),
                ("service", "kubelet"),
            )
        )
        yield from _expand(_CPU + _MEMORY, common)


def _pod_series(deployment: int, pod_index: int, namespace: str) -> Iterator[tuple[str, bool]]:
    """The series about one pod: (``name{labels}``, whether the Helm rules select it)."""
    app = f"{_APPS[deployment % len(_APPS)]}-{deployment}"
    pod = f"{app}-{_hex(deployment, 10)}-{_hex(pod_index * 7919 + 0x5EED, 5)}"
    uid = _hex(pod_index * 104729 + 1, 32)
    uid = f"{uid[:8]}-{uid[8:12]}-{uid[12:16]}-{uid[16:20]}-{uid[20:]}"
    qos = ("burstable", "besteffort")[deployment % 5 == 4]
    slice_ = f"kubepods-{qos}-pod{uid.replace('-', '_')}.slice"
    pod_cgroup = f"/kubepods.slice/kubepods-{qos}.slice/{slice_}"
    node, ip = _node(pod_index // PODS_PER_NODE)
    pod_ip = f"10.{64 + pod_index // 65536}.{pod_index // 256 % 256}.{pod_index % 256}"
    kubelet = (
        ("endpoint", "https-metrics"),
        ("instance", f"{ip}:10250"),
        ("job", "kubelet"),
        ("metrics_path", "/metrics/cadvisor"),
        ("node", node),
        ("service", "kubelet"),
    )
    containers = [app, *("istio-proxy", "log-shipper")[: deployment % 3]]
    images = [f"registry.example.com/{namespace}/{app}:1.{deployment % 20}.{deployment % 7}"]
    images += ["docker.io/istio/proxyv2:1.20.3", "docker.io/fluent/fluent-bit:2.2.2"]

    def cgroup(container: str, image: str, seed: int) -> str:
        cid = _hex(seed, 64) if container else ""
        cgroup_id = f"{pod_cgroup}/cri-containerd-{cid}.scope" if cid else pod_cgroup
        return _labels(
            (
                ("container", container),
                ("id", cgroup_id),
                ("image", image),
                ("name", cid),
                ("namespace", namespace),
                ("pod", pod),
                *kubelet,
            )
        )

    for number, container in enumerate(containers):
        common = cgroup(container, images[number], pod_index * 16 + number + 1)
        for series in _expand(_CONTAINER_CGROUP, common):
            yield series, True
    for series in _expand(_POD_CGROUP, cgroup("", "", 0)):
        yield series, True
    pause = cgroup("POD", "registry.k8s.io/pause:3.9", pod_index * 16)
    for series in _expand(_PAUSE_CGROUP, pause):
        yield series, False

    if deployment % 4 != 3:  # three deployments in four serve behind a Service
        common = _labels(
            (
                ("container", app),
                ("endpoint", "http-metrics"),
                ("instance", f"{pod_ip}:8080"),
                ("job", app),
                ("namespace", namespace),
                ("pod", pod),
                ("service", app),
            )
        )
        for series in _expand(_APP, common):
            yield series, True

    ksm = (
        ("endpoint", "http"),
        ("instance", "10.64.0.2:8080"),
        ("job", "kube-state-metrics"),
        ("namespace", namespace),
        ("pod", pod),
        ("service", "kube-state-metrics"),
    )
    info = _labels(
        (
            *ksm,
            ("created_by_kind", "ReplicaSet"),
            ("created_by_name", f"{app}-{_hex(deployment, 10)}"),
            ("host_ip", ip),
            ("node", node),
            ("pod_ip", pod_ip),
            ("uid", uid),
        )
    )
    yield f"kube_pod_info{{{info}}}", True
    for series in _expand(_KSM_POD, _labels(ksm)):
        yield series, True
    for container in containers:
        for series in _expand(_KSM_CONTAINER, _labels((*ksm, ("container", container)))):
            yield series, True


def cluster_series(matched: int) -> Iterator[tuple[str, bool]]:
    """``(name{labels}, selected)`` for a cluster with exactly ``matched`` selected series.

    ``selected`` tells whether the Helm chart's default rules' series queries select the
    series (a namespace, a pod for ``container_*``, a container other than ``POD``).
    """
    if matched < 0:
        raise ValueError(f"matched must be >= 0, not {matched}")
    namespaces = _namespaces(matched)
    count = 0
    pod_index = 0
    deployment = 0
    while count < matched:
        namespace = namespaces[deployment % len(namespaces)]
        for _replica in range(1 + deployment % 4):
            if pod_index % PODS_PER_NODE == 0:
                for series in _node_series(pod_index // PODS_PER_NODE):
                    yield series, False
            for series, selected in _pod_series(deployment, pod_index, namespace):
                if selected:
                    count += 1
                yield series, selected
                if count == matched:
                    return
            pod_index += 1
        deployment += 1


@dataclass(frozen=True)
class SeriesCounts:
    """What :func:`write_openmetrics` wrote."""

    matched: int  # series the Helm default rules' series queries select
    total: int  # every series written
    metric_names: int
    samples: int


def write_openmetrics(path: Path, matched: int, timestamps: Sequence[int]) -> SeriesCounts:
    """Write :func:`cluster_series` as OpenMetrics text, a sample per series at each timestamp.

    Values are small integers growing with time (counters stay counters). The file ends with
    ``# EOF``; it is written in chunks, never held whole in memory.
    """
    times = sorted(timestamps)
    if not times:
        raise ValueError("at least one timestamp is needed")
    tails = [f" {index + 1} {t}\n" for index, t in enumerate(times)]
    total = selected_count = 0
    names: set[str] = set()
    buffer: list[str] = []
    size = 0
    with path.open("w", encoding="utf-8") as out:
        for series, selected in cluster_series(matched):
            total += 1
            selected_count += selected
            names.add(series[: series.index("{")])
            for tail in tails:
                buffer.append(series)
                buffer.append(tail)
            size += (len(series) + 16) * len(tails)
            if size >= _WRITE_CHUNK:
                out.write("".join(buffer))
                buffer.clear()
                size = 0
        buffer.append("# EOF\n")
        out.write("".join(buffer))
    return SeriesCounts(selected_count, total, len(names), total * len(times))
