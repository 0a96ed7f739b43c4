"""The image under the public deployments' manifests, from their unchanged argument lists.

../shared/deployments/profiles.yaml holds the container arguments of the prometheus-community
Helm chart (plain and with TLS), kube-prometheus, the upstream manifests and OpenShift's
cluster-monitoring-operator (skipped when the folder is absent). Each list is given to the
image's entrypoint (scripts/container-recipe.sh's tree, see harness/container.py) as the
manifest gives it, with only these remapped: host paths to folders of the test (the
ConfigMap, the serving-cert Secret, the emptyDirs, OpenShift's Prometheus kubeconfig), the
secure port to a free one, and the cluster DNS names of Prometheus to a real Prometheus here
(https ones through a TLS front; OpenShift's admits only the service account's token, as
kube-rbac-proxy does).

Each runs as a pod would: in-cluster (the service account mounted at its usual path, the
KUBERNETES_SERVICE_* variables pointing at the fake kube-apiserver), as uid 65534 (the Go
image's user; the chart lets runAsUser be anything), in a private mount namespace whose root
filesystem is read-only and whose only writable places are the emptyDirs. The kubelet's
probes (`/healthz`, `/livez`, `/readyz` over HTTPS, certificates not verified) must answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import ssl
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml

from harness.container import (
    SERVICE_ACCOUNT_DIR,
    ImageRoot,
    Unavailable,
    in_pod_mounts,
    pod_mounts_available,
    user_switch,
)
from harness.exporter import demo_dataset
from harness.fake_kube_apiserver import FakeKubeAPIServer, running_fake_kube_apiserver
from harness.kubectl import write_kubeconfig
from harness.pki import CertificateAuthority
from harness.ports import free_port
from harness.prometheus import PrometheusProcess
from harness.recording_proxy import RecordingProxy, running_recording_proxy
from tests.integration.conftest import scraping_prometheus

pytestmark = pytest.mark.asyncio(loop_scope="module")

PROFILES_FILE = Path(__file__).resolve().parents[3] / "shared" / "deployments" / "profiles.yaml"
# The Go image's user (distroless nonroot): not the uid our image's USER line names.
POD_UID = POD_GID = 65534
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


def _profiles() -> dict[str, dict[str, Any]]:
    if not PROFILES_FILE.exists():
        return {}
    profiles: dict[str, dict[str, Any]] = yaml.safe_load(PROFILES_FILE.read_text())
    return profiles


PROFILES = _profiles()


def _shared_dir(prefix: str) -> Path:
    """A folder uid 65534 can reach (pytest's tmp dirs are 0700 root)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


@dataclass
class Cluster:
    """What the profiles run against, shared by all of them."""

    kube: FakeKubeAPIServer
    prometheus: PrometheusProcess
    front: RecordingProxy  # https, no authentication
    rbac_front: RecordingProxy  # https, only the service account's token
    front_ca: Path
    workdir: Path
    service_account: dict[str, Path]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster() -> AsyncIterator[Cluster]:
    if not PROFILES:
        pytest.skip(f"{PROFILES_FILE} is absent")
    if not pod_mounts_available():
        pytest.skip("needs root and private mount namespaces (unshare --mount)")
    workdir = _shared_dir("profiles-")
    ca = CertificateAuthority("service-ca")
    front_ca = ca.write(workdir, "service-ca")
    cert, key = ca.issue_server(("127.0.0.1",)).write(workdir, "front")
    front_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    front_tls.load_cert_chain(cert, key)
    try:
        async with (
            running_fake_kube_apiserver() as kube,
            scraping_prometheus(demo_dataset()) as prometheus,
            running_recording_proxy(prometheus.url, ssl_context=front_tls) as front,
            running_recording_proxy(
                prometheus.url, ssl_context=front_tls, authorization=f"Bearer {kube.token}"
            ) as rbac_front,
        ):
            kube.add_object("v1/namespaces", {"metadata": {"name": "demo"}})
            for i in range(3):
                meta = {"name": f"web-{i}", "namespace": "demo", "labels": {"app": "web"}}
                kube.add_object("v1/pods", {"metadata": meta, "status": {"phase": "Running"}})
            front_proxy_ca = CertificateAuthority("front-proxy-ca")
            kube.set_authentication_configmap(
                client_ca=CertificateAuthority("client-ca").cert_pem.decode(),
                requestheader_ca=front_proxy_ca.cert_pem.decode(),
                allowed_names=["front-proxy-client"],
            )
            token = workdir / "token"
            token.write_text(kube.token)
            namespace = workdir / "namespace"
            namespace.write_text("monitoring")
            service_account = {"token": token, "ca.crt": kube.ca_file, "namespace": namespace}
            for path in (front_ca, kube.ca_file, *service_account.values()):
                path.chmod(0o644)
            yield Cluster(kube, prometheus, front, rbac_front, front_ca, workdir, service_account)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class Pod:
    """One profile's container, started from its argument list."""

    argv: list[str]
    env: dict[str, str]
    empty_dirs: list[Path]
    port: int
    serving_ca: Path | None  # the CA of a serving cert the manifest mounts, to verify it
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _pod(
    name: str, cluster: Cluster, image: ImageRoot, root: Path, *, command: list[str] | None
) -> Pod:
    """The profile's argv and environment with paths, port and Prometheus remapped."""
    args = [str(a) for a in PROFILES[name]["args"]]
    tmp = root / "tmp"  # emptyDir at /tmp (HOME, TMPDIR, WORKDIR)
    serving = root / "serving-cert"  # a Secret (tls.crt/tls.key) or an emptyDir
    prometheus_config = root / "prometheus-config"  # OpenShift's kubeconfig Secret
    for folder in (tmp, serving, prometheus_config):
        folder.mkdir(mode=0o755)
    empty_dirs = [tmp]
    serving_ca: Path | None = None
    if any(a.startswith("--tls-cert-file=") for a in args):
        ca = CertificateAuthority("serving-ca")
        serving_ca = ca.write(root, "serving-ca")
        pair = ca.issue_server(("prometheus-adapter.monitoring.svc", "127.0.0.1"))
        (serving / "tls.crt").write_bytes(pair.cert_pem)
        (serving / "tls.key").write_bytes(pair.key_pem)
        for path in serving.iterdir():
            path.chmod(0o644)  # a Secret volume's default mode
    else:
        empty_dirs.append(serving)
    paths = {
        "/tmp": tmp,
        "/etc/adapter": image.config_dir,
        "/var/run/serving-cert": serving,
        "/etc/prometheus-config": prometheus_config,
    }
    port = free_port()
    env = image.env(tmp)
    env["KUBERNETES_SERVICE_HOST"] = "127.0.0.1"
    env["KUBERNETES_SERVICE_PORT"] = str(cluster.kube.port)
    remapped = []
    for arg in args:
        flag, eq, value = arg.partition("=")
        if flag == "--secure-port":
            value = str(port)
        elif flag == "--prometheus-url":
            if value.startswith("http://"):
                value = cluster.prometheus.url + ("/" if value.endswith("/") else "")
            elif any(a.startswith("--prometheus-auth-config=") for a in args):
                value = cluster.rbac_front.url
            else:
                value = cluster.front.url
                env["SSL_CERT_FILE"] = str(cluster.front_ca)  # the pod's trust store
        elif flag == "--prometheus-auth-config":
            # OpenShift's kubeconfig: the service CA and the service account's token.
            write_kubeconfig(
                prometheus_config / "prometheus-config.yaml",
                "https://prometheus-k8s.openshift-monitoring.svc:9091",
                ca_file=str(cluster.front_ca),
                user={"tokenFile": f"{SERVICE_ACCOUNT_DIR}/token"},
            ).chmod(0o644)
        if eq and value.startswith("/"):
            for host_path, folder in paths.items():
                if value == host_path or value.startswith(host_path + "/"):
                    value = str(folder) + value[len(host_path) :]
                    break
        remapped.append(f"{flag}{eq}{value}" if eq else arg)
    entrypoint = [str(image.entrypoint)] if command is None else command
    return Pod([*entrypoint, *remapped], env, empty_dirs, port, serving_ca, root / "pod.log")


@dataclass
class Running:
    pod: Pod
    process: subprocess.Popen[bytes]


@pytest.fixture
def pod_root() -> Iterator[Path]:
    root = _shared_dir("pod-")
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def start(image_root: ImageRoot, cluster: Cluster, pod_root: Path) -> Iterator[Any]:
    started: list[subprocess.Popen[bytes]] = []

    def start_pod(name: str, command: list[str] | None = None) -> Running:
        try:
            prefix, preexec = user_switch(POD_UID, POD_GID)
        except Unavailable as reason:
            pytest.skip(str(reason))
        if preexec is not None:
            pytest.skip("needs setpriv (util-linux) to switch users inside the namespace")
        pod = _pod(name, cluster, image_root, pod_root, command=command)
        argv = in_pod_mounts(
            [*prefix, *pod.argv],
            empty_dirs=pod.empty_dirs,
            service_account=cluster.service_account,
            workdir=pod.empty_dirs[0],
        )
        with pod.log.open("wb") as log:
            process = subprocess.Popen(
                argv, env=pod.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        started.append(process)
        return Running(pod, process)

    yield start_pod
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)


async def _probe(running: Running, path: str, context: ssl.SSLContext | bool) -> tuple[int, str]:
    url = f"https://127.0.0.1:{running.pod.port}{path}"
    async with aiohttp.ClientSession() as session, session.get(url, ssl=context) as response:
        return response.status, await response.text()


async def _answers_its_probes(running: Running) -> None:
    """Wait for /readyz as the kubelet would, then check all three probes; stop with SIGTERM."""
    pod, process = running.pod, running.process
    context: ssl.SSLContext | bool = False  # the kubelet does not verify probe certificates
    if pod.serving_ca is not None:  # but this one we can: it must be the mounted Secret's
        context = ssl.create_default_context(cafile=str(pod.serving_ca))
    try:
        async with asyncio.timeout(START_TIMEOUT):
            while True:
                assert process.poll() is None, f"exited {process.returncode}:\n{pod.log_text()}"
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    if (await _probe(running, "/readyz", context))[0] == 200:
                        break
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"not ready in {START_TIMEOUT:g}s:\n{pod.log_text()}") from None
    for path in ("/healthz", "/livez", "/readyz"):
        assert await _probe(running, path, context) == (200, "ok"), pod.log_text()

    status = Path(f"/proc/{process.pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    assert fields["Uid"].split() == [str(POD_UID)] * 4, fields["Uid"]
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=STOP_TIMEOUT) == 0, pod.log_text()
    log = pod.log_text()
    assert "Read-only file system" not in log, log
    assert "Traceback" not in log, log


@pytest.mark.parametrize("name", sorted(PROFILES) or ["(no profiles)"])
async def test_profile_starts_and_answers_probes(start: Any, name: str) -> None:
    running = start(name)
    await _answers_its_probes(running)
    log = running.pod.log_text()
    args = PROFILES[name]["args"]
    if args[0] == "/adapter":  # the chart's first word, ignored as pflag ignores it
        assert log.count("ignoring positional arguments: /adapter") == 1, log
    if "--logtostderr=true" in args:  # OpenShift's manifest predates klog's removal
        assert log.count("--logtostderr") == 1, log


async def test_go_image_command_path(start: Any, image_root: ImageRoot) -> None:
    """`command: [/adapter]` with kube-prometheus' arguments runs the image's /adapter."""
    running = start("kube-prometheus", command=[str(image_root.adapter_link)])
    await _answers_its_probes(running)


async def test_openshift_profile_reaches_prometheus_with_the_service_account_token(
    start: Any, cluster: Cluster
) -> None:
    cluster.rbac_front.clear()
    await _answers_its_probes(start("openshift-cmo"))
    assert cluster.rbac_front.requests, "discovery never reached Prometheus"
    assert {r.status for r in cluster.rbac_front.requests} == {200}
