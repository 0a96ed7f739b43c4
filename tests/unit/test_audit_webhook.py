"""The webhook backend against a real local HTTP server (EventList body, kubeconfig
credentials, retries with backoff), the batch mode in front of it, and truncation."""

import asyncio
import base64
import logging
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from adapter.audit.backend import IgnoreErrorsBackend, TruncatingBackend, UnionBackend
from adapter.audit.buffered import BatchConfig, BufferedBackend
from adapter.audit.event import Event
from adapter.audit.levels import Level, Stage
from adapter.audit.metrics import AuditMetrics
from adapter.audit.webhook import Backoff, WebhookBackend, WebhookClient, WebhookError
from harness.pki import CertificateAuthority

TOKEN = "s3cr3t-audit-token"
CA = CertificateAuthority("audit-webhook-ca")


@dataclass
class Receiver:
    """An audit webhook: records each POST; answers `failures` 500s first."""

    failures: int = 0
    delay: float = 0.0
    posts: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.paths.append(request.path)
        self.headers.append(dict(request.headers))
        body = await request.read()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failures > 0:
            self.failures -= 1
            # A careless receiver that echoes the credentials: they must not reach our logs.
            return web.Response(status=500, text=f"boom {request.headers.get('Authorization')}")
        self.posts.append(orjson.loads(body))
        return web.Response(text="ok")  # not JSON: any 2xx will do

    def items(self) -> list[str]:
        return [item["auditID"] for post in self.posts for item in post["items"]]


def server_ssl(directory: Path) -> ssl.SSLContext:
    cert, key = CA.issue_server(["127.0.0.1"]).write(directory, "webhook")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest_asyncio.fixture
async def receiver(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[Receiver, TestServer]]:
    recv = Receiver()
    app = web.Application()
    app.router.add_post("/k8s-audit", recv.handle)
    server = TestServer(app)
    await server.start_server(ssl=server_ssl(tmp_path_factory.mktemp("tls")))
    try:
        yield recv, server
    finally:
        await server.close()


def kubeconfig(tmp_path: Path, server: TestServer) -> str:
    path = tmp_path / "webhook.kubeconfig"
    path.write_text(
        f"""\
apiVersion: v1
kind: Config
clusters:
  - name: audit
    cluster:
      server: https://127.0.0.1:{server.port}/k8s-audit
      certificate-authority-data: {base64.b64encode(CA.cert_pem).decode()}
users:
  - name: adapter
    user:
      token: {TOKEN}
contexts:
  - name: default
    context: {{cluster: audit, user: adapter}}
current-context: default
"""
    )
    return str(path)


def event(n: int, level: Level = Level.METADATA, response_object: bytes | None = None) -> Event:
    return Event(
        level=level,
        audit_id=f"id-{n}",
        stage=Stage.RESPONSE_COMPLETE,
        request_uri="/apis/custom.metrics.k8s.io/v1beta2",
        verb="get",
        user=None,
        source_ips=("127.0.0.1",),
        user_agent="test",
        object_ref=None,
        request_received_ns=1714557600_000000000,
        stage_ns=1714557600_000001000,
        response_status={"metadata": {}, "code": 200},
        response_object=response_object,
    )


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def webhook(
    tmp_path: Path, server: TestServer, registry: CollectorRegistry, sleep: Sleeps | None = None
) -> WebhookBackend:
    client = WebhookClient.from_kubeconfig(kubeconfig(tmp_path, server))
    return WebhookBackend(
        client.post_raw,
        Backoff(initial=0.01),
        AuditMetrics(registry),
        close=client.close,
        sleep=sleep or Sleeps(),
        jitter=lambda: 0.0,
    )


async def test_posts_an_event_list_with_the_kubeconfig_credentials(
    tmp_path: Path, receiver: tuple[Receiver, TestServer]
) -> None:
    recv, server = receiver
    backend = webhook(tmp_path, server, CollectorRegistry())
    assert await backend.process([event(1), event(2)])
    await backend.shutdown()
    assert recv.paths == ["/k8s-audit"]  # the server URL's own path, no slash added
    assert recv.headers[0]["Authorization"] == f"Bearer {TOKEN}"
    assert recv.headers[0]["Content-Type"] == "application/json"
    post = recv.posts[0]
    assert (post["kind"], post["apiVersion"], post["metadata"]) == (
        "EventList",
        "audit.k8s.io/v1",
        {},
    )
    assert recv.items() == ["id-1", "id-2"]


async def test_retries_with_exponential_backoff(
    tmp_path: Path, receiver: tuple[Receiver, TestServer]
) -> None:
    recv, server = receiver
    recv.failures = 2
    sleeps = Sleeps()
    backend = webhook(tmp_path, server, CollectorRegistry(), sleeps)
    assert await backend.process([event(1)])
    await backend.shutdown()
    assert len(recv.paths) == 3 and recv.items() == ["id-1"]
    assert sleeps.delays == pytest.approx([0.01, 0.015])


async def test_gives_up_after_five_attempts_and_reports(
    tmp_path: Path, receiver: tuple[Receiver, TestServer], caplog: pytest.LogCaptureFixture
) -> None:
    recv, server = receiver
    recv.failures = 10
    registry = CollectorRegistry()
    sleeps = Sleeps()
    backend = webhook(tmp_path, server, registry, sleeps)
    with caplog.at_level(logging.ERROR):
        assert not await backend.process([event(1), event(2)])
    await backend.shutdown()
    assert len(recv.paths) == 5
    assert sleeps.delays == pytest.approx([0.01, 0.015, 0.0225, 0.03375])
    assert registry.get_sample_value("apiserver_audit_error_total", {"plugin": "webhook"}) == 2
    assert (
        "Error in audit plugin 'webhook' affecting 2 audit events: the audit webhook answered 500"
        in caplog.text
    )
    assert TOKEN not in caplog.text


async def test_jitter_adds_up_to_a_fifth() -> None:
    sleeps = Sleeps()
    attempts = 0

    async def failing(body: bytes) -> None:
        nonlocal attempts
        attempts += 1
        raise WebhookError("down")

    backend = WebhookBackend(
        failing,
        Backoff(initial=10.0),
        AuditMetrics(CollectorRegistry()),
        sleep=sleeps,
        jitter=lambda: 1.0,
    )
    assert not await backend.process([event(1)])
    assert attempts == 5
    assert sleeps.delays == pytest.approx([12.0, 18.0, 27.0, 40.5])


async def test_unreachable_webhook_is_an_error_not_a_crash(tmp_path: Path) -> None:
    server = TestServer(web.Application())
    await server.start_server()
    port = server.port
    await server.close()
    path = tmp_path / "k"
    path.write_text(
        f"clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{port}'}}}}]\n"
        "contexts: [{name: x, context: {cluster: c}}]\ncurrent-context: x\n"
    )
    client = WebhookClient.from_kubeconfig(str(path))
    registry = CollectorRegistry()
    backend = WebhookBackend(
        client.post_raw,
        Backoff(initial=0.0),
        AuditMetrics(registry),
        close=client.close,
        sleep=Sleeps(),
    )
    assert not await backend.process([event(1)])
    await backend.shutdown()
    assert registry.get_sample_value("apiserver_audit_error_total", {"plugin": "webhook"}) == 1


# --- batch mode ----------------------------------------------------------------------------


def batch(**options: Any) -> BatchConfig:
    return BatchConfig(
        **{"max_batch_size": 3, "max_batch_wait": 0.2, "throttle_enable": False, **options}
    )


async def wait_until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_batches_by_size_then_by_wait(
    tmp_path: Path, receiver: tuple[Receiver, TestServer]
) -> None:
    recv, server = receiver
    buffered = BufferedBackend(
        webhook(tmp_path, server, CollectorRegistry()), batch(), AuditMetrics(CollectorRegistry())
    )
    buffered.start()
    for n in range(7):
        assert await buffered.process([event(n)])
    await wait_until(lambda: len(recv.items()) == 6)
    sizes = sorted(len(post["items"]) for post in recv.posts)
    assert sizes == [3, 3]
    await wait_until(lambda: len(recv.items()) == 7)  # the last one after max wait
    await buffered.shutdown()
    assert sorted(recv.items()) == sorted(f"id-{n}" for n in range(7))


async def test_batch_mode_never_blocks_the_request(
    tmp_path: Path, receiver: tuple[Receiver, TestServer]
) -> None:
    recv, server = receiver
    recv.delay = 1.0
    recv.failures = 1
    buffered = BufferedBackend(
        webhook(tmp_path, server, CollectorRegistry()),
        batch(max_batch_size=1),
        AuditMetrics(CollectorRegistry()),
    )
    buffered.start()
    started = time.monotonic()
    for n in range(5):
        assert await buffered.process([event(n)])
    assert time.monotonic() - started < 0.2
    await buffered.shutdown()  # waits for the sends in flight, retry included
    assert sorted(recv.items()) == [f"id-{n}" for n in range(5)]


async def test_full_buffer_drops_and_reports() -> None:
    release = asyncio.Event()
    delivered: list[str] = []

    class Slow:
        name = "slow"

        def start(self) -> None:
            pass

        async def process(self, events: Any) -> bool:
            await release.wait()
            delivered.extend(e.audit_id for e in events)
            return True

        async def shutdown(self) -> None:
            pass

    registry = CollectorRegistry()
    buffered = BufferedBackend(
        Slow(),
        batch(buffer_size=2, max_batch_size=1, max_batch_wait=0.0, async_delegate=False),
        AuditMetrics(registry),
    )
    buffered.start()
    assert await buffered.process([event(0)])
    await wait_until(lambda: not buffered._buffer)  # the first is being delivered
    for n in range(1, 6):
        assert await buffered.process([event(n)])  # never fails the request
    assert registry.get_sample_value("apiserver_audit_error_total", {"plugin": "buffered"}) == 3
    release.set()
    await buffered.shutdown()
    assert delivered == ["id-0", "id-1", "id-2"]


async def test_shutdown_delivers_what_is_buffered(
    tmp_path: Path, receiver: tuple[Receiver, TestServer]
) -> None:
    recv, server = receiver
    buffered = BufferedBackend(
        webhook(tmp_path, server, CollectorRegistry()),
        batch(max_batch_size=400, max_batch_wait=30.0),
        AuditMetrics(CollectorRegistry()),
    )
    buffered.start()
    for n in range(10):
        await buffered.process([event(n)])
    await asyncio.sleep(0.05)
    assert recv.posts == []  # waiting for the batch to fill or 30 s
    await buffered.shutdown()
    assert recv.items() == [f"id-{n}" for n in range(10)]


async def test_throttle_spaces_batches() -> None:
    times: list[float] = []

    class Recorder:
        name = "recorder"

        def start(self) -> None:
            pass

        async def process(self, events: Any) -> bool:
            times.append(time.monotonic())
            return True

        async def shutdown(self) -> None:
            pass

    buffered = BufferedBackend(
        Recorder(),
        batch(
            max_batch_size=1,
            max_batch_wait=0.0,
            throttle_enable=True,
            throttle_qps=20.0,
            throttle_burst=1,
        ),
        AuditMetrics(CollectorRegistry()),
    )
    buffered.start()
    for n in range(4):
        await buffered.process([event(n)])
    await buffered.shutdown()
    assert len(times) == 4
    assert times[-1] - times[0] >= 3 / 20 * 0.9


# --- wrappers ------------------------------------------------------------------------------


class Collect:
    name = "collect"

    def __init__(self, result: bool = True) -> None:
        self.batches: list[list[Event]] = []
        self.result = result

    def start(self) -> None:
        pass

    async def process(self, events: Any) -> bool:
        self.batches.append(list(events))
        return self.result

    async def shutdown(self) -> None:
        pass


async def test_truncation() -> None:
    registry = CollectorRegistry()
    inner = Collect()
    small = len(event(0).json) + 1
    backend = TruncatingBackend(inner, small + 100, 2 * small + 100, AuditMetrics(registry))
    big_object = b'{"kind":"MetricValueList","items":["' + b"x" * 500 + b'"]}'
    assert await backend.process(
        [
            event(1),
            event(2, Level.REQUEST_RESPONSE, big_object),  # truncated: object dropped, annotated
            event(3, Level.METADATA, None),
            Event(**{**event(4).__dict__, "annotations": {"a": "y" * 500}}),  # too big: dropped
        ]
    )
    sent = [e for b in inner.batches for e in b]
    assert [e.audit_id for e in sent] == ["id-1", "id-2", "id-3"]
    assert sent[1].response_object is None and sent[1].annotations == {
        "audit.k8s.io/truncated": "true"
    }
    assert [len(b) for b in inner.batches] == [2, 1]  # split by max batch size
    assert registry.get_sample_value("apiserver_audit_error_total", {"plugin": "truncate"}) == 1


async def test_blocking_ignores_errors_strict_does_not() -> None:
    failing = Collect(result=False)
    assert await IgnoreErrorsBackend(failing).process([event(1)])
    assert not await UnionBackend([Collect(), failing]).process([event(1)])
    both = Collect()
    union = UnionBackend([both, IgnoreErrorsBackend(Collect(result=False))])
    assert await union.process([event(2)])
    assert [e.audit_id for e in both.batches[0]] == ["id-2"]
