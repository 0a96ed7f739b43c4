"""A real stack for the integration tests: the demo exporter, a real Prometheus scraping it,
the adapter as its own process over HTTPS, and a kubeconfig for the real kubectl."""

import json
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp
import pytest
import pytest_asyncio
from multidict import CIMultiDict

from harness.adapter import AdapterProcess, running_adapter
from harness.container import ImageRoot, Unavailable, build_image_root
from harness.exporter import Dataset, demo_dataset, running_exporter
from harness.fake_kube_apiserver import FakeKubeAPIServer, running_fake_kube_apiserver
from harness.kubectl import kubectl_get_raw, write_kubeconfig
from harness.prometheus import PrometheusProcess

REPO = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO / "config" / "demo.yaml"


@dataclass
class Stack:
    prometheus: PrometheusProcess
    adapter: AdapterProcess
    kubeconfig: Path

    async def get_raw(self, path: str) -> tuple[int, str, str]:
        return await kubectl_get_raw(path, kubeconfig=self.kubeconfig)

    async def get_json(self, path: str) -> Any:
        code, out, err = await self.get_raw(path)
        assert code == 0, f"kubectl get --raw {path} failed ({code}): {err}"
        return json.loads(out)


async def wait_for_rates(prometheus: PrometheusProcess, pods: int) -> None:
    """irate needs two scrapes of every pod's counter."""
    await prometheus.wait_for_series("http_requests_total", count=pods)
    await prometheus.wait_for_query(
        "irate(http_requests_total[1m])",
        lambda result: len(result) >= pods,
        timeout=30,
    )


@asynccontextmanager
async def scraping_prometheus(dataset: Dataset) -> AsyncIterator[PrometheusProcess]:
    """A real Prometheus scraping an exporter of `dataset`, once every pod has a rate."""
    async with (
        running_exporter(dataset) as exporter,
        PrometheusProcess([exporter.target]) as prometheus,
    ):
        await wait_for_rates(prometheus, len(dataset.pods))
        yield prometheus


# Health checks unaudited, the pods' custom metrics with their responses, the rest as metadata.
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: None
    nonResourceURLs: ["/healthz*", "/readyz*", "/livez*"]
  - level: RequestResponse
    resources:
      - group: custom.metrics.k8s.io
        resources: ["pods/*"]
  - level: Metadata
"""

# web-0 serves 0.5 req/s in demo_dataset(), which config/demo.yaml's irate gives exactly.
WEB_0_REQUESTS_PER_SECOND = "500m"


class Reply(NamedTuple):
    status: int
    body: Any  # JSON, or text
    audit_id: str


@dataclass
class AuditedAdapter:
    """The adapter in cluster mode, its fake kube-apiserver, and its audit log."""

    adapter: AdapterProcess
    kube: FakeKubeAPIServer
    log_path: Path
    workdir: Path

    async def get(
        self, path: str, token: str | None = None, headers: Sequence[tuple[str, str]] = ()
    ) -> Reply:
        auth = [("Authorization", f"Bearer {token}")] if token else []
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                self.adapter.url + path,
                ssl=self.adapter.ssl_context(),
                headers=CIMultiDict([*auth, *headers]),
            ) as response,
        ):
            json_body = response.content_type == "application/json"
            body = await response.json() if json_body else await response.text()
            return Reply(response.status, body, response.headers.get("Audit-ID", ""))

    def events(self, audit_id: str | None = None) -> list[dict[str, Any]]:
        """The logged events (of one request). The log's blocking mode, the default, writes a
        request's events before its response: they are all here once the reply has come."""
        if not self.log_path.exists():
            return []
        lines = self.log_path.read_text().splitlines()
        events = [json.loads(line) for line in lines if line]
        return [e for e in events if audit_id is None or e["auditID"] == audit_id]

    def completed(self, audit_id: str) -> dict[str, Any]:
        """The ResponseComplete event of one request."""
        [event] = [e for e in self.events(audit_id) if e["stage"] == "ResponseComplete"]
        return event


@asynccontextmanager
async def audited_adapter(workdir: Path) -> AsyncIterator[AuditedAdapter]:
    """config/demo.yaml in cluster mode over a real Prometheus with the demo data, auditing by
    AUDIT_POLICY to a log file. The fake kube-apiserver holds the demo namespace and pods, and lets
    every authenticated user read discovery; tokens and other rules are the caller's to add
    (the fake reads them at each TokenReview and SubjectAccessReview)."""
    dataset = demo_dataset()
    (workdir / "policy.yaml").write_text(AUDIT_POLICY)
    log_path = workdir / "audit" / "audit.log"
    async with (
        scraping_prometheus(dataset) as prometheus,
        running_fake_kube_apiserver() as kube,
    ):
        for namespace in sorted({pod.namespace for pod in dataset.pods}):
            kube.add_object("v1/namespaces", {"metadata": {"name": namespace}})
        for pod in dataset.pods:
            kube.add_object("v1/pods", {"metadata": {"name": pod.name, "namespace": pod.namespace}})
        kube.set_authentication_configmap()
        kube.allow(group="system:authenticated", non_resource_path="/apis*", verb="get")
        kubeconfig = kube.kubeconfig(workdir / "kubeconfig")
        flags = [
            f"--lister-kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            f"--audit-policy-file={workdir / 'policy.yaml'}",
            f"--audit-log-path={log_path}",
        ]
        async with running_adapter(DEMO_CONFIG, prometheus.url, flags, no_cluster=False) as adapter:
            yield AuditedAdapter(adapter, kube, log_path, workdir)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: Any) -> AsyncIterator[Stack]:
    async with (
        scraping_prometheus(demo_dataset()) as prometheus,
        running_adapter(DEMO_CONFIG, prometheus.url) as adapter,
    ):
        kubeconfig = write_kubeconfig(
            tmp_path_factory.mktemp("kube") / "config",
            adapter.url,
            ca_file=str(adapter.ca_file),
            token="no-cluster",
        )
        yield Stack(prometheus, adapter, kubeconfig)


@pytest.fixture(scope="session")
def image_root() -> Iterator[ImageRoot]:
    """The image's root filesystem from the Dockerfile's recipe, root-owned and read-only,
    with config/demo.yaml as its ConfigMap. Built once per session (~20 s)."""
    # Not under pytest's tmp dir: that is 0700 root, and the image's uid must reach the venv.
    root = Path(tempfile.mkdtemp(prefix="container-recipe-", dir="/tmp"))
    try:
        try:
            image = build_image_root(root, DEMO_CONFIG)
        except Unavailable as reason:
            pytest.skip(str(reason))
        yield image
    finally:
        shutil.rmtree(root, ignore_errors=True)
